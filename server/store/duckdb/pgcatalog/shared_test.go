package pgcatalog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/pgtest"
	"github.com/sluicelog/sluice/internal/s3test"
	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/objstore"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/duckdb"
	"github.com/sluicelog/sluice/server/store/duckdb/pgcatalog"
	"github.com/sluicelog/sluice/server/store/storetest"
)

func TestMain(m *testing.M) {
	if childMain() {
		return
	}
	os.Exit(pgtest.Wrap(s3test.Wrap(m)).Run())
}

// cluster is a database and a bucket that nodes share.
type cluster struct {
	dsn    string
	bucket s3test.Bucket
}

func newCluster(t testing.TB) cluster {
	return cluster{dsn: pgtest.DSN(t), bucket: s3test.NewBucket(t)}
}

type nodeOpts struct {
	smallQueue  bool
	maintenance time.Duration
	queryTO     time.Duration
	cacheDir    string // default: a new temporary directory
	graveDelay  time.Duration
	orphanAge   time.Duration
	// shardMergeAge sets Shared.ShardMergeAge; catalog and objects, when
	// set, wrap the node's catalog and bucket; registry gets its metrics.
	shardMergeAge time.Duration
	commit        time.Duration
	catalog       func(duckdb.Catalog) duckdb.Catalog
	objects       func(duckdb.Objects) duckdb.Objects
	registry      *prometheus.Registry
}

// nodeWithCache opens a node whose object cache is dir.
func (c cluster) nodeWithCache(t *testing.T, dir string) *duckdb.Store {
	return c.node(t, nodeOpts{cacheDir: dir})
}

// node opens one store node on the cluster; t.Cleanup closes it.
func (c cluster) node(t testing.TB, o nodeOpts) *duckdb.Store {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, c.dsn)
	require.NoError(t, err)
	cat, err := pgcatalog.Open(ctx, pool)
	require.NoError(t, err)
	if o.cacheDir == "" {
		o.cacheDir = t.TempDir()
	}
	b, err := objstore.Open(ctx, objstore.Config{URL: c.bucket.URL, Endpoint: c.bucket.Endpoint,
		AccessKey: c.bucket.AccessKey, SecretKey: c.bucket.SecretKey, CacheDir: o.cacheDir}, objstore.Settings{})
	require.NoError(t, err)
	var dcat duckdb.Catalog = cat
	if o.catalog != nil {
		dcat = o.catalog(cat)
	}
	var objs duckdb.Objects = b
	if o.objects != nil {
		objs = o.objects(b)
	}
	cfg := duckdb.Config{DataDir: t.TempDir(), Threads: 2, MemoryLimit: "256MB", QueryTimeout: o.queryTO,
		Shared: &duckdb.Shared{Catalog: dcat, Objects: objs, MaintenanceInterval: o.maintenance, GraveDelay: o.graveDelay, OrphanAge: o.orphanAge,
			ShardMergeAge: o.shardMergeAge, CommitInterval: o.commit}}
	if cfg.Shared.MaintenanceInterval == 0 {
		cfg.Shared.MaintenanceInterval = time.Hour // tests run maintenance themselves
	}
	if o.smallQueue {
		cfg.QueueBytes = 1 << 20
	}
	if o.registry == nil {
		o.registry = prometheus.NewRegistry()
	}
	s, err := duckdb.Open(cfg, duckdb.Settings{Registerer: o.registry})
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, s.Close())
		pool.Close()
	})
	return s
}

// The store on object storage and a PostgreSQL catalog passes the same
// conformance suite as the embedded one, shard logs (cursors, PullLogs)
// included.
func TestSharedConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) store.Store {
		return newCluster(t).node(t, nodeOpts{smallQueue: o.SmallQueue})
	})
}

// pullShard reads a shard from cursor to its end on n.
func pullShard(t *testing.T, n *duckdb.Store, shard int, cursor int64) []protocol.LogGroup {
	t.Helper()
	ctx := context.Background()
	var out []protocol.LogGroup
	for {
		res, err := n.Pull(ctx, "p", "l", shard, store.PullRequest{Cursor: cursor, EndCursor: -1, MaxGroups: 7, MaxBytes: 1 << 20})
		require.NoError(t, err)
		if res.Groups == 0 {
			return out
		}
		require.Equal(t, cursor+int64(res.Groups), res.Next, "one cursor per group")
		var gl protocol.LogGroupList
		require.NoError(t, gl.Unmarshal(res.Data))
		require.Len(t, gl.LogGroups, res.Groups)
		out = append(out, gl.LogGroups...)
		cursor = res.Next
	}
}

// Two nodes writing to the same shards: every node (and a node started
// afterwards) reads each shard as the same sequence of groups under the
// same cursors, each node's writes in the order it acknowledged them.
func TestShardLogAcrossNodes(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a, b := c.node(t, nodeOpts{}), c.node(t, nodeOpts{})
	require.NoError(t, a.EnsureLogstore(ctx, spec()))
	now := time.Now()
	var wg sync.WaitGroup
	for w, n := range []*duckdb.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				tag := fmt.Sprintf("%c%02d", 'a'+w, i)
				assert.NoError(t, n.WriteShard(ctx, "p", "l", i%2, []protocol.LogGroup{group(tag, now, 2)}, time.Now()))
			}
		}()
	}
	wg.Wait()
	fresh := c.node(t, nodeOpts{})
	for shard := range 2 {
		var seqs [][]string
		for _, n := range []*duckdb.Store{a, b, fresh} {
			begin, err := n.Cursor(ctx, "p", "l", shard, store.CursorAt{Kind: store.CursorBegin})
			require.NoError(t, err)
			end, err := n.Cursor(ctx, "p", "l", shard, store.CursorAt{Kind: store.CursorEnd})
			require.NoError(t, err)
			require.Equal(t, int64(0), begin)
			require.Equal(t, int64(30), end, "shard %d: 15 groups from each node", shard)
			var tags []string
			for _, g := range pullShard(t, n, shard, begin) {
				tags = append(tags, g.Logs[0].Contents[0].Value)
			}
			seqs = append(seqs, tags)
		}
		require.Equal(t, seqs[0], seqs[1], "shard %d reads the same on both nodes", shard)
		require.Equal(t, seqs[0], seqs[2], "shard %d reads the same on a new node", shard)
		last := map[byte]string{}
		for _, tag := range seqs[0] {
			require.Greater(t, tag, last[tag[0]], "shard %d: %s after %s: a node's writes in order", shard, tag, last[tag[0]])
			last[tag[0]] = tag
		}
		require.Len(t, last, 2)
		// A cursor taken on one node reads the same groups on another.
		res, err := fresh.Pull(ctx, "p", "l", shard, store.PullRequest{Cursor: 17, EndCursor: 19, MaxGroups: 10, MaxBytes: 1 << 20})
		require.NoError(t, err)
		require.Equal(t, 2, res.Groups)
		require.Equal(t, int64(19), res.Next)
	}
	_, err := fresh.Pull(ctx, "p", "l", 0, store.PullRequest{Cursor: 31, EndCursor: -1, MaxGroups: 10, MaxBytes: 1 << 20})
	require.ErrorIs(t, err, store.ErrInvalidCursor)
}

func group(tag string, t0 time.Time, n int) protocol.LogGroup {
	g := protocol.LogGroup{Topic: "t", Source: "s"}
	for i := range n {
		g.Logs = append(g.Logs, protocol.Log{Time: uint32(t0.Unix()), Contents: []protocol.LogContent{
			{Key: "tag", Value: tag}, {Key: "seq", Value: fmt.Sprint(i)}}})
	}
	return g
}

func count(t *testing.T, s *duckdb.Store, q string) int {
	t.Helper()
	res, err := s.Search(context.Background(), "p", "l", store.SearchRequest{From: time.Now().Add(-48 * time.Hour), To: time.Now().Add(time.Hour),
		Query: q + " | select count(*) as n"})
	require.NoError(t, err)
	var n int
	_, err = fmt.Sscan(res.Rows[0][0].Value, &n)
	require.NoError(t, err)
	return n
}

func spec() store.LogstoreSpec {
	return store.LogstoreSpec{Project: "p", Logstore: "l", TTLDays: 30, Index: &index.Config{
		Line: &index.LineConfig{Token: index.DefaultTokens()},
		Keys: map[string]index.KeyConfig{"tag": {Type: index.TypeText}, "seq": {Type: index.TypeLong}}}}
}

// A write acknowledged by one node is visible from every other node at
// once (no loading step after the acknowledgement), and a logstore made
// on one node is known to the others.
func TestWriteOnOneNodeReadOnAnother(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a, b, other := c.node(t, nodeOpts{}), c.node(t, nodeOpts{}), c.node(t, nodeOpts{})
	require.NoError(t, a.EnsureLogstore(ctx, spec()))
	now := time.Now()
	g := group("from-b", now, 100)
	require.NoError(t, b.Write(ctx, "p", "l", []protocol.LogGroup{g}, now), "b learns of the logstore from the catalog")
	require.Equal(t, 100, count(t, a, "tag: from-b"))
	require.Equal(t, 100, count(t, other, "tag: from-b"))
	g = group("from-a", now, 7)
	require.NoError(t, a.Write(ctx, "p", "l", []protocol.LogGroup{g}, now))
	require.Equal(t, 7, count(t, b, "tag: from-a"))
	require.Equal(t, 107, count(t, other, "*"))

	res, err := other.Search(ctx, "p", "l", store.SearchRequest{From: now.Add(-time.Hour), To: now.Add(time.Hour), Query: "tag: from-a", Line: 100})
	require.NoError(t, err)
	require.Len(t, res.Rows, 7, "a search (not SQL) reads the same segments")

	require.NoError(t, b.DropLogstore(ctx, "p", "l"))
	_, err = a.Search(ctx, "p", "l", store.SearchRequest{From: now.Add(-time.Hour), To: now.Add(time.Hour), Query: "*"})
	require.Eventually(t, func() bool {
		_, err = a.Search(ctx, "p", "l", store.SearchRequest{From: now.Add(-time.Hour), To: now.Add(time.Hour), Query: "*"})
		return err != nil
	}, 10*time.Second, 50*time.Millisecond, "a dropped logstore disappears from the other nodes")
	require.ErrorIs(t, err, store.ErrLogstoreNotFound)
}

// Pages of a newest-first search on a node that has none of the
// segments cached: every page is complete and in order, the second page
// (from the first one's kept keys) fetches the segments it needs itself,
// and a narrow search downloads only the segments its range meets.
func TestPagesFetchTheirSegments(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a := c.node(t, nodeOpts{})
	require.NoError(t, a.EnsureLogstore(ctx, spec()))
	base := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	// Ten writes, ten group commits: ten segments, one minute apart.
	for i := range 10 {
		at := base.Add(time.Duration(i) * time.Minute)
		require.NoError(t, a.Write(ctx, "p", "l", []protocol.LogGroup{group(fmt.Sprint("w", i), at, 50)}, at))
	}
	cacheDir := t.TempDir()
	b := c.nodeWithCache(t, cacheDir)
	req := store.SearchRequest{From: base.Add(-time.Minute), To: base.Add(time.Hour), Query: "*", Line: 100, Reverse: true}
	var got []string
	for off := 0; off < 500; off += 100 {
		req.Offset = off
		res, err := b.Search(ctx, "p", "l", req)
		require.NoError(t, err)
		require.Len(t, res.Rows, 100, "page at offset %d", off)
		for _, r := range res.Rows {
			for _, f := range r {
				if f.Key == "tag" {
					got = append(got, f.Value)
				}
			}
		}
	}
	require.Len(t, got, 500)
	for i, tag := range got {
		require.Equal(t, fmt.Sprint("w", 9-i/50), tag, "row %d: newest segment first", i)
	}
	// A search of the newest minute downloads that minute's segment only
	// (the catalog lists segments whose time range meets the query's).
	c2 := t.TempDir()
	fresh := c.nodeWithCache(t, c2)
	req = store.SearchRequest{From: base.Add(9 * time.Minute), To: base.Add(10 * time.Minute), Query: "*", Line: 100, Reverse: true}
	res, err := fresh.Search(ctx, "p", "l", req)
	require.NoError(t, err)
	require.Len(t, res.Rows, 50)
	files, err := filepath.Glob(filepath.Join(c2, "segments", "*", "*.parquet"))
	require.NoError(t, err)
	require.Len(t, files, 1, "segments downloaded for one minute's search")
}

// childMain runs a child process's role (the kill -9 test); false in
// the test binary's own run.
func childMain() bool { return false }

// objects lists the bucket's segment objects.
func (c cluster) objects(t *testing.T) []string {
	t.Helper()
	var keys []string
	for o := range s3test.Get(t).Client().ListObjects(context.Background(), c.bucket.Name, minio.ListObjectsOptions{Prefix: "sluice/segments/", Recursive: true}) {
		require.NoError(t, o.Err)
		keys = append(keys, o.Key)
	}
	return keys
}

// Every group commit adds a segment; the node holding the maintenance
// lease merges a day's small ones and deletes the replaced objects once
// their graves are due, while queries on every node see each line once.
func TestSharedCompactionAndGraves(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	// Graves wait for twice the longest query timeout of the nodes: the
	// reader's 3s (the maintenance node's 100ms is too short for queries on
	// a loaded machine).
	reader := c.node(t, nodeOpts{queryTO: 3 * time.Second})
	require.NoError(t, reader.EnsureLogstore(ctx, spec()))
	now := time.Now()
	const writes, per = 20, 50
	for i := range writes {
		g := group("w"+fmt.Sprint(i), now, per)
		require.NoError(t, reader.Write(ctx, "p", "l", []protocol.LogGroup{g}, now))
	}
	require.Len(t, c.objects(t), writes, "one segment per commit")
	require.Equal(t, writes*per, count(t, reader, "*"))

	// A node with a short maintenance interval takes the lease.
	maint := c.node(t, nodeOpts{maintenance: 200 * time.Millisecond, queryTO: 100 * time.Millisecond, graveDelay: time.Millisecond})
	require.Eventually(t, func() bool {
		require.Equal(t, writes*per, count(t, reader, "*"), "every line once, during compaction too")
		return len(c.objects(t)) == 1
	}, 60*time.Second, 100*time.Millisecond, "the 20 small segments become one and their objects are deleted")
	_ = maint
	require.Equal(t, writes*per, count(t, c.node(t, nodeOpts{}), "*"), "a new node (cold cache) reads the merged segment")
	require.Equal(t, per, count(t, reader, "tag: w7"))
}

// Nodes may run with different --query-timeout: the maintenance node
// (100ms) merges the segments at once, but deletes none of the replaced
// objects while a node that may still be running a one-hour query over
// them is registered.
func TestSharedGravesWaitForTheSlowestNode(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	slow := c.node(t, nodeOpts{queryTO: time.Hour})
	require.NoError(t, slow.EnsureLogstore(ctx, spec()))
	now := time.Now()
	const writes, per = 10, 20
	for i := range writes {
		g := group("w"+fmt.Sprint(i), now, per)
		require.NoError(t, slow.Write(ctx, "p", "l", []protocol.LogGroup{g}, now))
	}
	require.Len(t, c.objects(t), writes)
	pool, err := pgxpool.New(ctx, c.dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	c.node(t, nodeOpts{maintenance: 100 * time.Millisecond, queryTO: 100 * time.Millisecond, graveDelay: time.Millisecond})
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM store_segments").Scan(&n))
		return n == 1
	}, 60*time.Second, 50*time.Millisecond, "the maintenance node merges the segments")
	var graves int
	var dueIn float64
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*), min(extract(epoch FROM due - now()))::float8 FROM store_graves").Scan(&graves, &dueIn))
	require.Equal(t, writes, graves)
	require.Greater(t, dueIn, (119 * time.Minute).Seconds(), "graves wait twice the slow node's timeout")
	time.Sleep(time.Second) // ten maintenance rounds
	require.Len(t, c.objects(t), writes+1, "the replaced objects are still there for the slow node's queries")
	require.Equal(t, writes*per, count(t, slow, "*"))
}

// An object no catalog row names (an upload whose node died before the
// commit) is removed once older than OrphanAge; recorded ones stay.
func TestSharedOrphansRemoved(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a := c.node(t, nodeOpts{})
	require.NoError(t, a.EnsureLogstore(ctx, spec()))
	now := time.Now()
	require.NoError(t, a.Write(ctx, "p", "l", []protocol.LogGroup{group("kept", now, 10)}, now))
	orphan := "sluice/segments/ls1/987654321.parquet"
	_, err := s3test.Get(t).Client().PutObject(ctx, c.bucket.Name, orphan, strings.NewReader("PAR1"), 4, minio.PutObjectOptions{})
	require.NoError(t, err)
	require.Len(t, c.objects(t), 2)
	c.node(t, nodeOpts{maintenance: 100 * time.Millisecond, orphanAge: time.Second})
	require.Eventually(t, func() bool {
		keys := c.objects(t)
		return len(keys) == 1 && keys[0] != orphan
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, 10, count(t, a, "tag: kept"))
}
