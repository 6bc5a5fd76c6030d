package pgcatalog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/s3test"
	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/duckdb"
)

// shardObjects lists the bucket's shard log objects.
func (c cluster) shardObjects(t testing.TB) []string {
	t.Helper()
	var keys []string
	for o := range s3test.Get(t).Client().ListObjects(context.Background(), c.bucket.Name, minio.ListObjectsOptions{Prefix: "sluice/shardlog/", Recursive: true}) {
		require.NoError(t, o.Err)
		keys = append(keys, o.Key)
	}
	return keys
}

// chunkRows counts the catalog's shard chunk rows.
func (c cluster) chunkRows(t testing.TB) int {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), c.dsn)
	require.NoError(t, err)
	defer pool.Close()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM store_shard_chunks").Scan(&n))
	return n
}

// shardSnap is what a consumer sees of a shard: its bounds and each
// cursor's group, byte for byte, its receive time (GetCursorTime) and the
// cursor GetCursor gives for that time.
type shardSnap struct {
	begin, end int64
	groups     [][]byte
	times      []int64
	seeks      []int64
}

// readShard reads every group of the shard on n, one PullLogs per cursor
// and once in pulls of several groups, which must agree.
func readShard(ctx context.Context, n *duckdb.Store, shard int) (shardSnap, error) {
	var s shardSnap
	var err error
	if s.begin, err = n.Cursor(ctx, "p", "l", shard, store.CursorAt{Kind: store.CursorBegin}); err != nil {
		return s, err
	}
	if s.end, err = n.Cursor(ctx, "p", "l", shard, store.CursorAt{Kind: store.CursorEnd}); err != nil {
		return s, err
	}
	var all []byte
	for c := s.begin; c < s.end; c++ {
		res, err := n.Pull(ctx, "p", "l", shard, store.PullRequest{Cursor: c, EndCursor: c + 1, MaxGroups: 10, MaxBytes: 1 << 20})
		if err != nil {
			return s, fmt.Errorf("pull cursor %d: %w", c, err)
		}
		if res.Groups != 1 || res.Next != c+1 {
			return s, fmt.Errorf("pull cursor %d: %d groups, next %d", c, res.Groups, res.Next)
		}
		s.groups = append(s.groups, res.Data)
		all = append(all, res.Data...)
		at, err := n.CursorTime(ctx, "p", "l", shard, c)
		if err != nil {
			return s, fmt.Errorf("time of cursor %d: %w", c, err)
		}
		seek, err := n.Cursor(ctx, "p", "l", shard, store.CursorAt{Kind: store.CursorTime, Time: at})
		if err != nil {
			return s, fmt.Errorf("cursor by the time of cursor %d: %w", c, err)
		}
		s.times, s.seeks = append(s.times, at.UnixNano()), append(s.seeks, seek)
	}
	var many []byte
	for c := s.begin; c < s.end; {
		res, err := n.Pull(ctx, "p", "l", shard, store.PullRequest{Cursor: c, EndCursor: -1, MaxGroups: 5, MaxBytes: 1 << 20})
		if err != nil {
			return s, fmt.Errorf("pull from cursor %d: %w", c, err)
		}
		if res.Groups == 0 {
			return s, fmt.Errorf("pull from cursor %d before the end %d: nothing", c, s.end)
		}
		many = append(many, res.Data...)
		c = res.Next
	}
	if !bytes.Equal(all, many) {
		return s, errors.New("pulls of one group and of several disagree")
	}
	return s, nil
}

func equalSnaps(a, b []shardSnap) error {
	for i := range a {
		if a[i].begin != b[i].begin || a[i].end != b[i].end {
			return fmt.Errorf("shard %d: cursors [%d, %d) became [%d, %d)", i, a[i].begin, a[i].end, b[i].begin, b[i].end)
		}
		for c := range a[i].groups {
			if !bytes.Equal(a[i].groups[c], b[i].groups[c]) {
				return fmt.Errorf("shard %d: cursor %d reads other bytes", i, a[i].begin+int64(c))
			}
			if a[i].times[c] != b[i].times[c] {
				return fmt.Errorf("shard %d: cursor %d's time %d became %d", i, a[i].begin+int64(c), a[i].times[c], b[i].times[c])
			}
			if a[i].seeks[c] != b[i].seeks[c] {
				return fmt.Errorf("shard %d: the cursor by cursor %d's time %d became %d", i, a[i].begin+int64(c), a[i].seeks[c], b[i].seeks[c])
			}
		}
	}
	return nil
}

func readShards(t *testing.T, n *duckdb.Store) []shardSnap {
	t.Helper()
	var out []shardSnap
	for shard := range 2 {
		s, err := readShard(context.Background(), n, shard)
		require.NoError(t, err)
		out = append(out, s)
	}
	return out
}

// metric is the value of a counter, or a histogram's count, in reg.
func metric(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// hookCatalog runs test code around a node's catalog calls.
type hookCatalog struct {
	duckdb.Catalog
	afterShardChunks func()
	replace          func() error // before ReplaceShardObjects; an error skips it
	candidates       func() bool  // false: find nothing to merge
	lease            func() bool  // false: never hold a lease
}

func (h *hookCatalog) ShardChunks(ctx context.Context, lsID int64, shard int, from int64, maxN int) (int64, int64, []duckdb.ShardChunk, error) {
	b, e, ch, err := h.Catalog.ShardChunks(ctx, lsID, shard, from, maxN)
	if h.afterShardChunks != nil && maxN > 0 {
		h.afterShardChunks()
	}
	return b, e, ch, err
}

func (h *hookCatalog) ReplaceShardObjects(ctx context.Context, lsID int64, old []int64, in, out []duckdb.ShardChunk, hold duckdb.Hold) error {
	if h.replace != nil {
		if err := h.replace(); err != nil {
			return err
		}
	}
	return h.Catalog.ReplaceShardObjects(ctx, lsID, old, in, out, hold)
}

func (h *hookCatalog) ShardMergeCandidates(ctx context.Context, window, cutoff int64, maxObjects int) ([]duckdb.ShardChunk, error) {
	if h.candidates != nil && !h.candidates() {
		return nil, nil
	}
	return h.Catalog.ShardMergeCandidates(ctx, window, cutoff, maxObjects)
}

func (h *hookCatalog) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if h.lease != nil && !h.lease() {
		return false, nil
	}
	return h.Catalog.TryLease(ctx, name, holder, ttl)
}

// writeOld makes count commits, alternating between shards 0 and 1,
// received from at (second after second), the i-th of 1+i%3 groups.
func writeOld(t *testing.T, n *duckdb.Store, tag string, at time.Time, count int) {
	t.Helper()
	for i := range count {
		recv := at.Add(time.Duration(i) * time.Second)
		var gs []protocol.LogGroup
		for k := range 1 + i%3 {
			gs = append(gs, group(fmt.Sprint(tag, i, "-", k), recv, 3))
		}
		require.NoError(t, n.WriteShard(context.Background(), "p", "l", i%2, gs, recv))
	}
}

// windowStart is the start of the 10-minute merge window (the default
// ShardMergeAge) two hours ago.
func windowStart() time.Time {
	w := (10 * time.Minute).Nanoseconds()
	return time.Unix(0, time.Now().Add(-2*time.Hour).UnixNano()/w*w)
}

// The maintenance node merges the shard log objects of each logstore and
// past 10-minute window into one; cursors read the same bytes on every
// node before, during and after, a reader that listed the old chunks
// just before the swap still reads their objects, and the replaced
// objects are deleted once their graves are due.
func TestShardMerge(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	// Every node's query timeout is 5s: graves wait for twice the longest.
	a := c.node(t, nodeOpts{queryTO: 5 * time.Second})
	require.NoError(t, a.EnsureLogstore(ctx, spec()))
	base := windowStart()
	writeOld(t, a, "a", base.Add(time.Minute), 12)   // window A: 12 objects
	writeOld(t, a, "b", base.Add(11*time.Minute), 8) // window B: 8 objects
	old := c.shardObjects(t)
	writeOld(t, a, "now", time.Now().Add(-time.Second), 3) // not due: stays
	before := c.shardObjects(t)
	require.Len(t, before, 23, "one shard object per commit")
	recent := slices.DeleteFunc(slices.Clone(before), func(k string) bool { return slices.Contains(old, k) })
	require.Len(t, recent, 3)
	want := readShards(t, a)
	require.Equal(t, []int64{0, 0, 23, 22}, []int64{want[0].begin, want[1].begin, want[0].end, want[1].end})
	require.Equal(t, 23, c.chunkRows(t), "one chunk row per commit")
	seekAt := base.Add(11*time.Minute + 2*time.Second)
	seek, err := a.Cursor(ctx, "p", "l", 0, store.CursorAt{Kind: store.CursorTime, Time: seekAt})
	require.NoError(t, err)

	// A reader on a node with an empty cache lists shard 0's chunks and
	// is held there until the merge has swapped them.
	var armed atomic.Bool
	listed, resume := make(chan struct{}), make(chan struct{})
	r := c.node(t, nodeOpts{queryTO: 5 * time.Second, catalog: func(cat duckdb.Catalog) duckdb.Catalog {
		return &hookCatalog{Catalog: cat, afterShardChunks: func() {
			if armed.CompareAndSwap(true, false) {
				close(listed)
				<-resume
			}
		}}
	}})
	armed.Store(true)
	held := make(chan error, 1)
	go func() {
		res, err := r.Pull(ctx, "p", "l", 0, store.PullRequest{Cursor: 0, EndCursor: -1, MaxGroups: 100, MaxBytes: 1 << 20})
		if err == nil && !bytes.Equal(res.Data, slices.Concat(want[0].groups...)) {
			err = errors.New("the held reader read other bytes")
		}
		held <- err
	}()
	<-listed

	// Meanwhile a consumer reads both shards over and over.
	stop := make(chan struct{})
	var rounds int
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var got []shardSnap
			for shard := range 2 {
				s, err := readShard(ctx, a, shard)
				if err != nil {
					readErr = err
					return
				}
				got = append(got, s)
			}
			if err := equalSnaps(want, got); err != nil {
				readErr = err
				return
			}
			rounds++
		}
	}()

	// Graves are due 2×5s after the swap: ample for the held reader to
	// resume on a loaded machine, short for the test.
	reg := prometheus.NewRegistry()
	c.node(t, nodeOpts{maintenance: 200 * time.Millisecond, queryTO: 5 * time.Second, graveDelay: time.Millisecond, registry: reg})
	require.Eventually(t, func() bool { return metric(t, reg, "sluice_store_shard_objects_merged_total") == 20 },
		60*time.Second, 50*time.Millisecond, "20 old objects merged")
	require.Equal(t, 2.0, metric(t, reg, "sluice_store_shard_merge_seconds"), "two merges: one per window")
	require.Equal(t, 7, c.chunkRows(t), "one chunk row per shard and window, and the 3 recent")
	require.Equal(t, 16.0, metric(t, reg, "sluice_store_shard_chunk_rows_merged_total"))
	close(resume)
	require.NoError(t, <-held, "a reader that listed the chunks before the swap reads the old objects (buried, not deleted)")

	require.Eventually(t, func() bool { return len(c.shardObjects(t)) == 5 }, 60*time.Second, 100*time.Millisecond,
		"the replaced objects are deleted once due: 2 merged + 3 recent")
	close(stop)
	wg.Wait()
	require.NoError(t, readErr, "a consumer reading during the merge")
	require.Positive(t, rounds)
	after := c.shardObjects(t)
	for _, k := range recent {
		require.Contains(t, after, k, "recent objects are not merged yet")
	}
	require.Zero(t, metric(t, reg, "sluice_store_shard_merge_failures_total"))

	cacheDir := t.TempDir()
	for _, n := range []*duckdb.Store{a, r, c.node(t, nodeOpts{cacheDir: cacheDir})} {
		require.NoError(t, equalSnaps(want, readShards(t, n)), "same cursors, same bytes after the merge (cached or not)")
		got, err := n.Cursor(ctx, "p", "l", 0, store.CursorAt{Kind: store.CursorTime, Time: seekAt})
		require.NoError(t, err)
		require.Equal(t, seek, got, "a cursor by time is unchanged")
	}
	cached, err := filepath.Glob(filepath.Join(cacheDir, "shardlog", "*", "*"))
	require.NoError(t, err)
	require.Len(t, cached, 3, "a new node caches the 3 recent objects it read whole, not the merged ones (read by range)")
}

// A maintenance node that dies after uploading a merged object but
// before the swap leaves the shard as it was (the upload is named by no
// chunk); the next maintenance node's orphan sweep removes it and merges
// again.
func TestShardMergeCrash(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	// Every node's query timeout is 2s: graves wait for twice the longest.
	a := c.node(t, nodeOpts{queryTO: 2 * time.Second})
	require.NoError(t, a.EnsureLogstore(ctx, spec()))
	writeOld(t, a, "a", windowStart().Add(time.Minute), 10)
	before := c.shardObjects(t)
	require.Len(t, before, 10)
	want := readShards(t, a)

	// The node "dies" at its swap: no swap, no clean-up, no more work.
	var dead atomic.Bool
	var mu sync.Mutex
	var uploaded []string
	c.node(t, nodeOpts{maintenance: 200 * time.Millisecond, queryTO: 2 * time.Second,
		catalog: func(cat duckdb.Catalog) duckdb.Catalog {
			return &hookCatalog{Catalog: cat,
				replace: func() error {
					dead.Store(true)
					return errors.New("killed")
				},
				candidates: func() bool { return !dead.Load() },
				lease:      func() bool { return !dead.Load() }}
		},
		objects: func(o duckdb.Objects) duckdb.Objects {
			return &hookObjects{Objects: o, dead: &dead, put: func(key string) {
				if strings.HasPrefix(key, "shardlog/") { // not compaction's segments
					mu.Lock()
					uploaded = append(uploaded, key)
					mu.Unlock()
				}
			}}
		}})
	require.Eventually(t, dead.Load, 60*time.Second, 50*time.Millisecond)
	mu.Lock()
	require.Len(t, uploaded, 1)
	orphan := "sluice/" + uploaded[0]
	mu.Unlock()
	require.Contains(t, c.shardObjects(t), orphan, "the merged object was uploaded")
	require.Len(t, c.shardObjects(t), 11)
	fresh := c.node(t, nodeOpts{queryTO: 2 * time.Second})
	require.NoError(t, equalSnaps(want, readShards(t, fresh)), "nothing half-visible: the chunks still name the old objects")

	c.node(t, nodeOpts{maintenance: 200 * time.Millisecond, queryTO: 2 * time.Second, graveDelay: time.Millisecond, orphanAge: time.Second})
	require.Eventually(t, func() bool {
		keys := c.shardObjects(t)
		return len(keys) == 1 && keys[0] != orphan
	}, 60*time.Second, 100*time.Millisecond, "the orphan removed, the old objects merged by the next node and deleted")
	require.NoError(t, equalSnaps(want, readShards(t, c.node(t, nodeOpts{}))))
}

// hookObjects records uploads and, once dead, fails deletes (a dead
// node cleans nothing up).
type hookObjects struct {
	duckdb.Objects
	dead *atomic.Bool
	put  func(key string)
}

func (h *hookObjects) Put(ctx context.Context, key, path string) (int64, error) {
	n, err := h.Objects.Put(ctx, key, path)
	if err == nil {
		h.put(key)
	}
	return n, err
}

func (h *hookObjects) Delete(ctx context.Context, key string) error {
	if h.dead.Load() {
		return errors.New("killed")
	}
	return h.Objects.Delete(ctx, key)
}
