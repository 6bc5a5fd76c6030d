package pgcatalog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/pgtest"
	"github.com/sluicelog/sluice/internal/s3test"
	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/duckdb"
	"github.com/sluicelog/sluice/server/store/duckdb/pgcatalog"
)

// BenchmarkShardMerge measures merging shard log objects: a node commits
// `commits` times to shards 0 and 1 (nginx lines, groupKiB raw per shard
// per commit, received in one past 10-minute window), then a maintenance
// node merges them. It reports the objects and chunk rows before and
// after, the merge time (sluice_store_shard_merge_seconds) and the time
// of a first PullLogs of one group from the middle on a node with an
// empty cache before (the commit's object fetched whole) and after (its
// merged chunk row read by range, up to 256 KiB). The writing is not timed; ns/op is the wait
// for the merge (including up to one maintenance interval, 100ms).
func BenchmarkShardMerge(b *testing.B) {
	for _, p := range []struct{ commits, groupKiB int }{{1000, 16}, {300, 256}} {
		b.Run(fmt.Sprintf("commits=%d/groupKiB=%d", p.commits, p.groupKiB), func(b *testing.B) {
			for b.Loop() {
				benchShardMerge(b, p.commits, p.groupKiB)
			}
		})
	}
}

func benchShardMerge(b *testing.B, commits, groupKiB int) {
	b.StopTimer()
	ctx := context.Background()
	c := newCluster(b)
	// Every node's query timeout is 1s: graves wait for twice the
	// longest registered.
	w := c.node(b, nodeOpts{commit: 5 * time.Millisecond, queryTO: time.Second})
	require.NoError(b, w.EnsureLogstore(ctx, benchSpec()))
	g := protocoltest.NginxLogGroup(groupKiB << 10)
	at := windowStart().Add(time.Minute)
	var wg sync.WaitGroup
	for shard := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range commits {
				recv := at.Add(time.Duration(i) * 100 * time.Millisecond)
				require.NoError(b, w.WriteShard(ctx, "p", "l", shard, []protocol.LogGroup{*g}, recv))
			}
		}()
	}
	wg.Wait()
	before, rowsBefore := len(c.shardObjects(b)), c.chunkRows(b)
	pull := func() time.Duration {
		n := c.node(b, nodeOpts{queryTO: time.Second})
		t0 := time.Now()
		res, err := n.Pull(ctx, "p", "l", 1, store.PullRequest{Cursor: int64(commits / 2), EndCursor: -1, MaxGroups: 1, MaxBytes: 1})
		require.NoError(b, err)
		require.Equal(b, 1, res.Groups)
		return time.Since(t0)
	}
	coldBefore := pull()

	reg := prometheus.NewRegistry()
	b.StartTimer()
	c.node(b, nodeOpts{maintenance: 100 * time.Millisecond, queryTO: time.Second, graveDelay: time.Millisecond, registry: reg})
	require.Eventually(b, func() bool { return metric(b, reg, "sluice_store_shard_objects_merged_total") >= float64(before) },
		10*time.Minute, 20*time.Millisecond)
	b.StopTimer()
	merges := metric(b, reg, "sluice_store_shard_merge_seconds")
	require.Eventually(b, func() bool { return float64(len(c.shardObjects(b))) == merges }, time.Minute, 100*time.Millisecond,
		"one object per merge once the graves are due")
	var secs float64
	mfs, err := reg.Gather()
	require.NoError(b, err)
	for _, mf := range mfs {
		if mf.GetName() == "sluice_store_shard_merge_seconds" {
			secs = mf.GetMetric()[0].GetHistogram().GetSampleSum()
		}
	}
	after := len(c.shardObjects(b))
	var size int64
	for o := range s3test.Get(b).Client().ListObjects(ctx, c.bucket.Name, minio.ListObjectsOptions{Prefix: "sluice/shardlog/", Recursive: true}) {
		require.NoError(b, o.Err)
		size += o.Size
	}
	coldAfter := pull()
	b.ReportMetric(float64(before), "objects-before")
	b.ReportMetric(float64(rowsBefore), "rows-before")
	b.ReportMetric(float64(c.chunkRows(b)), "rows-after")
	b.ReportMetric(float64(after), "objects-after")
	b.ReportMetric(merges, "merges")
	b.ReportMetric(float64(size)/float64(after)/(1<<20), "MiB/merged-object")
	b.ReportMetric(secs*1000, "merge-ms")
	b.ReportMetric(secs*1e6/float64(before), "merge-µs/object")
	b.ReportMetric(float64(coldBefore.Microseconds())/1000, "cold-pull-before-ms")
	b.ReportMetric(float64(coldAfter.Microseconds())/1000, "cold-pull-after-ms")
	b.StartTimer() // b.Loop wants it running; ns/op is the merge's wait
}

// BenchmarkShardCatalog times the shard queries on one shard of 1M
// commits' cursors (one group each, one commit every 200ms: 2.3 days of
// one node) kept as 1M chunk rows (unmerged) and as 12,500 (merged, 80
// commits a row, about what BenchmarkShardMerge's first case leaves).
// seek-recent is GetCursor by a time near the end (ShardSeek: the first
// chunk received at or after it, in cursor order; a consumer starting
// from a recent time), seek-middle by a time in the middle, chunks-middle
// a PullLogs' listing from a cursor in the middle (ShardChunks, up to
// 1,000 rows). It logs the table's size with its indexes.
func BenchmarkShardCatalog(b *testing.B) {
	const commits, every = 1_000_000, int64(200 * time.Millisecond)
	t0 := time.Now().Add(-72 * time.Hour).UnixNano()
	for _, rows := range []int{commits, 12_500} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			ctx := context.Background()
			pool, err := pgxpool.New(ctx, pgtest.DSN(b))
			require.NoError(b, err)
			b.Cleanup(pool.Close)
			cat, err := pgcatalog.Open(ctx, pool)
			require.NoError(b, err)
			ls, err := cat.PutLogstore(ctx, duckdb.LogstoreRecord{Project: "p", Logstore: "l", TTLDays: 7, Index: "null", Columns: "[]"})
			require.NoError(b, err)
			per := int64(commits / rows)
			_, err = pool.Exec(ctx, `INSERT INTO store_shard_chunks (ls_id, shard, first, groups, received, obj, off, len, merged)
				SELECT $1::bigint, 0, i * $2::bigint, $2::integer, $3::bigint + (i + 1) * $2::bigint * $4::bigint, i / 300, 0, 1000, $2::bigint > 1
				FROM generate_series(0::bigint, $5::bigint - 1) i`,
				ls, per, t0, every, rows)
			require.NoError(b, err)
			_, err = pool.Exec(ctx, "INSERT INTO store_shards (ls_id, shard, next) VALUES ($1, 0, $2)", ls, commits)
			require.NoError(b, err)
			_, err = pool.Exec(ctx, "VACUUM ANALYZE store_shard_chunks")
			require.NoError(b, err)
			var size int64
			require.NoError(b, pool.QueryRow(ctx, "SELECT pg_total_relation_size('store_shard_chunks')").Scan(&size))
			b.Logf("store_shard_chunks with its indexes: %.1f MiB", float64(size)/(1<<20))
			seek := func(at int64) func(b *testing.B) {
				return func(b *testing.B) {
					for b.Loop() {
						ch, err := cat.ShardSeek(ctx, ls, 0, t0+at*every)
						require.NoError(b, err)
						require.Positive(b, ch.Groups)
					}
				}
			}
			b.Run("seek-recent", seek(commits-10))
			b.Run("seek-middle", seek(commits/2))
			b.Run("chunks-middle", func(b *testing.B) {
				for b.Loop() {
					_, end, chunks, err := cat.ShardChunks(ctx, ls, 0, commits/2, 1000)
					require.NoError(b, err)
					require.Equal(b, int64(commits), end)
					require.NotEmpty(b, chunks)
				}
			})
		})
	}
}
