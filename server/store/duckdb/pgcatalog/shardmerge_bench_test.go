package pgcatalog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/s3test"
	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/store"
)

// BenchmarkShardMerge measures merging shard log objects: a node commits
// `commits` times to shards 0 and 1 (nginx lines, groupKiB raw per shard
// per commit, received in one past 10-minute window), then a maintenance
// node merges them. It reports the objects before and after, the merge
// time (sluice_store_shard_merge_seconds) and the time of a first
// PullLogs on a node with an empty cache before and after (a merged
// object is fetched whole). The writing is not timed; ns/op is the wait
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
	w := c.node(b, nodeOpts{commit: 5 * time.Millisecond})
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
	before := len(c.shardObjects(b))
	pull := func() time.Duration {
		n := c.node(b, nodeOpts{})
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
	b.ReportMetric(float64(after), "objects-after")
	b.ReportMetric(merges, "merges")
	b.ReportMetric(float64(size)/float64(after)/(1<<20), "MiB/merged-object")
	b.ReportMetric(secs*1000, "merge-ms")
	b.ReportMetric(secs*1e6/float64(before), "merge-µs/object")
	b.ReportMetric(float64(coldBefore.Microseconds())/1000, "cold-pull-before-ms")
	b.ReportMetric(float64(coldAfter.Microseconds())/1000, "cold-pull-after-ms")
	b.StartTimer() // b.Loop wants it running; ns/op is the merge's wait
}
