package pgcatalog_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/pgtest"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/duckdb"
	"github.com/sluicelog/sluice/server/store/duckdb/pgcatalog"
)

func openCatalog(t *testing.T, dsn string) *pgcatalog.Catalog {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	c, err := pgcatalog.Open(context.Background(), pool)
	require.NoError(t, err)
	return c
}

func seg(id, ls int64, day int32, rows int64) duckdb.SegmentRecord {
	return duckdb.SegmentRecord{ID: id, Logstore: ls, Day: day, Rows: rows, Bytes: 10, MinTime: int64(day) * 86400, MaxTime: int64(day)*86400 + 100, Fields: "[]"}
}

func TestCatalog(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := openCatalog(t, dsn), openCatalog(t, dsn)

	id, err := a.PutLogstore(ctx, duckdb.LogstoreRecord{Project: "p", Logstore: "l", TTLDays: 7, Index: "null", Columns: "[]"})
	require.NoError(t, err)
	id2, err := b.PutLogstore(ctx, duckdb.LogstoreRecord{Project: "p", Logstore: "l", TTLDays: 9, Index: "null", Columns: "[]"})
	require.NoError(t, err)
	require.Equal(t, id, id2, "put is by project and name")
	ls, err := a.Logstores(ctx)
	require.NoError(t, err)
	require.Len(t, ls, 1)
	require.Equal(t, 9, ls[0].TTLDays)

	ids, err := a.NewSegmentIDs(ctx, 3)
	require.NoError(t, err)
	more, err := b.NewSegmentIDs(ctx, 3)
	require.NoError(t, err)
	require.Len(t, append(ids, more...), 6)
	seen := map[int64]bool{}
	for _, x := range append(ids, more...) {
		require.False(t, seen[x], "ids are unique across nodes")
		seen[x] = true
	}

	require.NoError(t, a.AddSegments(ctx, []duckdb.SegmentRecord{seg(ids[0], id, 100, 5), seg(ids[1], id, 100, 5), seg(ids[2], id, 101, 5)}, nil, nil))
	require.ErrorIs(t, a.AddSegments(ctx, []duckdb.SegmentRecord{seg(more[0], 9999, 100, 5)}, nil, nil), store.ErrLogstoreNotFound)
	got, err := b.Segments(ctx, id, 100, 100, 0, 1<<40)
	require.NoError(t, err)
	require.Len(t, got, 2)
	got, err = b.Segments(ctx, id, 100, 101, 101*86400+200, 1<<40)
	require.NoError(t, err)
	require.Empty(t, got, "pruned by time range")

	small, err := a.SmallSegments(ctx, 10, 2, 100)
	require.NoError(t, err)
	require.Len(t, small, 2, "day 100 has two small segments with the same columns")
	due := duckdb.Hold{} // due at once: no node registered a query timeout
	merged := seg(more[1], id, 100, 10)
	require.NoError(t, b.ReplaceSegments(ctx, []int64{ids[0], ids[1]}, merged, due))
	require.ErrorIs(t, a.ReplaceSegments(ctx, []int64{ids[0], ids[1]}, seg(more[2], id, 100, 10), due), duckdb.ErrConflict,
		"a merge whose inputs are gone is void")
	got, err = a.Segments(ctx, id, 100, 100, 0, 1<<40)
	require.NoError(t, err)
	require.Equal(t, []int64{more[1]}, []int64{got[0].ID})

	graves, err := a.DueGraves(ctx, 10)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{seg(ids[0], id, 0, 0).Key(), seg(ids[1], id, 0, 0).Key()}, graves)
	known, err := a.Known(ctx, []int64{ids[0], more[1], more[2]})
	require.NoError(t, err)
	require.Equal(t, map[int64]bool{ids[0]: true, more[1]: true}, known, "graves and live segments are known; an unrecorded upload is not")
	require.NoError(t, a.ForgetGraves(ctx, graves))
	graves, err = a.DueGraves(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, graves)

	n, err := a.ExpireDays(ctx, id, 101, duckdb.Hold{Delay: time.Hour})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	graves, err = a.DueGraves(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, graves, "not due yet")

	require.NoError(t, b.DropLogstore(ctx, id, due))
	ls, err = a.Logstores(ctx)
	require.NoError(t, err)
	require.Empty(t, ls)
	graves, err = a.DueGraves(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, []string{seg(ids[2], id, 0, 0).Key()}, graves)
}

func TestLease(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := openCatalog(t, dsn), openCatalog(t, dsn)
	ok, err := a.TryLease(ctx, "m", "node-a", 300*time.Millisecond)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = b.TryLease(ctx, "m", "node-b", 300*time.Millisecond)
	require.NoError(t, err)
	require.False(t, ok, "held by a")
	ok, err = a.TryLease(ctx, "m", "node-a", 300*time.Millisecond)
	require.NoError(t, err)
	require.True(t, ok, "renewed by its holder")
	require.Eventually(t, func() bool {
		ok, err := b.TryLease(ctx, "m", "node-b", time.Minute)
		return err == nil && ok
	}, 5*time.Second, 50*time.Millisecond, "taken over once expired")
	ok, err = a.TryLease(ctx, "m", "node-a", time.Minute)
	require.NoError(t, err)
	require.False(t, ok)
}

// Shard chunks committed by two nodes take consecutive cursors in commit
// order; retention removes chunks by receive time, buries the objects no
// chunk names any more, and leaves the shard's end where it was.
func TestShardChunks(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := openCatalog(t, dsn), openCatalog(t, dsn)
	ls, err := a.PutLogstore(ctx, duckdb.LogstoreRecord{Project: "p", Logstore: "l", TTLDays: 1, Index: "null", Columns: "[]"})
	require.NoError(t, err)
	chunk := func(shard, groups int, recv, obj int64) duckdb.ShardChunk {
		return duckdb.ShardChunk{Logstore: ls, Shard: shard, Groups: groups, Received: recv, Object: obj, Len: 10}
	}
	c1 := []duckdb.ShardChunk{chunk(0, 3, 100, 1), chunk(1, 2, 100, 1)}
	require.NoError(t, a.AddSegments(ctx, nil, c1, nil))
	c2 := []duckdb.ShardChunk{chunk(0, 4, 200, 2)}
	require.NoError(t, b.AddSegments(ctx, nil, c2, nil))
	require.Equal(t, []int64{0, 0}, []int64{c1[0].First, c1[1].First})
	require.Equal(t, int64(3), c2[0].First, "the second commit continues the shard")

	begin, end, got, err := b.ShardChunks(ctx, ls, 0, 4, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{0, 7}, []int64{begin, end})
	require.Len(t, got, 1, "cursor 4 is in the second chunk")
	require.Equal(t, int64(2), got[0].Object)
	_, _, got, err = b.ShardChunks(ctx, ls, 0, 7, 10)
	require.NoError(t, err)
	require.Empty(t, got, "nothing from the end on")
	c, err := a.ShardSeek(ctx, ls, 0, 150)
	require.NoError(t, err)
	require.Equal(t, []int64{3, 4, 2}, []int64{c.First, int64(c.Groups), c.Object}, "the chunk received at or after 150")
	c, err = a.ShardSeek(ctx, ls, 0, 300)
	require.NoError(t, err)
	require.Equal(t, []int64{7, 0}, []int64{c.First, int64(c.Groups)}, "after everything: the end")
	c, err = a.ShardSeek(ctx, ls, 5, 0)
	require.NoError(t, err)
	require.Equal(t, []int64{0, 0}, []int64{c.First, int64(c.Groups)}, "a shard never written")

	n, err := a.ExpireShards(ctx, ls, 150, duckdb.Hold{})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	begin, end, _, err = b.ShardChunks(ctx, ls, 0, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{3, 7}, []int64{begin, end})
	begin, end, _, err = b.ShardChunks(ctx, ls, 1, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{2, 2}, []int64{begin, end}, "an expired shard keeps its end")
	graves, err := a.DueGraves(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, []string{duckdb.ShardObjectKey(ls, 1)}, graves)
	known, err := a.Known(ctx, []int64{1, 2, 3})
	require.NoError(t, err)
	require.Equal(t, map[int64]bool{1: true, 2: true}, known, "buried and live objects are not orphans")

	require.NoError(t, a.DropLogstore(ctx, ls, duckdb.Hold{}))
	graves, err = a.DueGraves(ctx, 10)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{duckdb.ShardObjectKey(ls, 1), duckdb.ShardObjectKey(ls, 2)}, graves)
}

// Merge candidates are the unmerged objects of the oldest window that
// ended before the cutoff; a swap replaces their chunks by merged ones
// (fewer rows, cursors unchanged) and buries the old objects; a swap
// whose chunks changed meanwhile is void.
func TestShardMergeCatalog(t *testing.T) {
	ctx := context.Background()
	a := openCatalog(t, pgtest.DSN(t))
	ls, err := a.PutLogstore(ctx, duckdb.LogstoreRecord{Project: "p", Logstore: "l", TTLDays: 1, Index: "null", Columns: "[]"})
	require.NoError(t, err)
	chunk := func(shard, groups int, recv, obj, off int64) duckdb.ShardChunk {
		return duckdb.ShardChunk{Logstore: ls, Shard: shard, Groups: groups, Received: recv, Object: obj, Off: off, Len: 10}
	}
	require.NoError(t, a.AddSegments(ctx, nil, []duckdb.ShardChunk{chunk(0, 3, 100, 1, 0), chunk(1, 2, 105, 1, 10)}, nil))
	require.NoError(t, a.AddSegments(ctx, nil, []duckdb.ShardChunk{chunk(0, 4, 150, 2, 0)}, nil))
	require.NoError(t, a.AddSegments(ctx, nil, []duckdb.ShardChunk{chunk(0, 1, 1500, 3, 0)}, nil))

	got, err := a.ShardMergeCandidates(ctx, 1000, 0, 10)
	require.NoError(t, err)
	require.Empty(t, got, "no window over")
	got, err = a.ShardMergeCandidates(ctx, 1000, 1000, 10)
	require.NoError(t, err)
	require.Len(t, got, 3, "objects 1 and 2 (window [0, 1000)), every chunk")
	require.Equal(t, []int64{1, 1, 2}, []int64{got[0].Object, got[1].Object, got[2].Object})
	require.Equal(t, []int64{0, 0, 3}, []int64{got[0].First, got[1].First, got[2].First})

	// Shard 0's two chunks (cursors 0-2 and 3-6) become one row, shard
	// 1's one moves.
	merged := []duckdb.ShardChunk{
		{Logstore: ls, Shard: 0, First: 0, Groups: 7, Received: 150, Object: 9, Off: 0, Len: 30},
		{Logstore: ls, Shard: 1, First: 0, Groups: 2, Received: 105, Object: 9, Off: 30, Len: 15},
	}
	require.Equal(t, 4, chunkRows(t, a, ls))
	require.NoError(t, a.ReplaceShardObjects(ctx, ls, []int64{1, 2}, got, merged, duckdb.Hold{}))
	require.Equal(t, 3, chunkRows(t, a, ls), "4 rows became 3")
	begin, end, chunks, err := a.ShardChunks(ctx, ls, 0, 5, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{0, 8}, []int64{begin, end}, "cursors unchanged")
	require.Len(t, chunks, 2, "cursor 5 is in the merged row")
	require.Equal(t, []int64{0, 7}, []int64{chunks[0].First, chunks[1].First})
	require.Equal(t, []int64{9, 3}, []int64{chunks[0].Object, chunks[1].Object})
	require.Equal(t, []int64{0, 30}, []int64{chunks[0].Off, chunks[0].Len})
	require.Equal(t, []int{7, 1}, []int{chunks[0].Groups, chunks[1].Groups})
	require.Equal(t, []bool{true, false}, []bool{chunks[0].Merged, chunks[1].Merged})
	require.Equal(t, int64(150), chunks[0].Received, "the latest receive time of the merged chunks")
	_, _, chunks, err = a.ShardChunks(ctx, ls, 1, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []duckdb.ShardChunk{{Logstore: ls, Shard: 1, First: 0, Groups: 2, Received: 105, Object: 9, Off: 30, Len: 15, Merged: true}}, chunks)
	seek, err := a.ShardSeek(ctx, ls, 0, 120)
	require.NoError(t, err)
	require.Equal(t, chunks[0].Object, seek.Object)
	require.Equal(t, []int64{0, 7}, []int64{seek.First, int64(seek.Groups)}, "the merged row holding the chunk received at 150")
	require.True(t, seek.Merged)
	graves, err := a.DueGraves(ctx, 10)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{duckdb.ShardObjectKey(ls, 1), duckdb.ShardObjectKey(ls, 2)}, graves)
	known, err := a.Known(ctx, []int64{9})
	require.NoError(t, err)
	require.True(t, known[9], "the merged object is named")

	got, err = a.ShardMergeCandidates(ctx, 1000, 1000, 10)
	require.NoError(t, err)
	require.Empty(t, got, "merged chunks are not merged again")
	got, err = a.ShardMergeCandidates(ctx, 1000, 2000, 10)
	require.NoError(t, err)
	require.Len(t, got, 1, "the next window once over")

	require.ErrorIs(t, a.ReplaceShardObjects(ctx, ls, []int64{1, 2}, got, merged, duckdb.Hold{}), duckdb.ErrConflict,
		"a second merge of the same objects is void")
	require.Equal(t, 3, chunkRows(t, a, ls), "a void merge changes nothing")
	n, err := a.ExpireShards(ctx, ls, 1000, duckdb.Hold{})
	require.NoError(t, err)
	require.Equal(t, 2, n, "the merged rows")
	graves, err = a.DueGraves(ctx, 10)
	require.NoError(t, err)
	require.Contains(t, graves, duckdb.ShardObjectKey(ls, 9))
	require.NotContains(t, graves, duckdb.ShardObjectKey(ls, 3))
	moved3 := slices.Clone(got)
	moved3[0].Object = 10
	require.NoError(t, a.ReplaceShardObjects(ctx, ls, []int64{3}, got, moved3, duckdb.Hold{}))
	require.ErrorIs(t, a.ReplaceShardObjects(ctx, ls, []int64{10}, nil, nil, duckdb.Hold{}), duckdb.ErrConflict,
		"chunks added or removed meanwhile void the swap")
	_, _, chunks, err = a.ShardChunks(ctx, ls, 0, 7, 10)
	require.NoError(t, err)
	require.Equal(t, []duckdb.ShardChunk{{Logstore: ls, Shard: 0, First: 7, Groups: 1, Received: 1500, Object: 10, Len: 10, Merged: true}}, chunks,
		"a void swap leaves the chunks as they were")
}

// chunkRows counts the logstore's chunk rows (every shard).
func chunkRows(t *testing.T, c *pgcatalog.Catalog, ls int64) int {
	t.Helper()
	n := 0
	for shard := range 2 {
		_, _, chunks, err := c.ShardChunks(context.Background(), ls, shard, 0, 100)
		require.NoError(t, err)
		n += len(chunks)
	}
	return n
}

// Nodes may run with different query timeouts: whichever node removes a
// segment, its object is kept for twice the longest timeout of the nodes
// registered (a query on any of them may have listed the segment). A
// registration whose TTL ran out no longer counts, and a node registering
// waits for a removal in progress, so a query it starts afterwards can no
// longer list what the removal took out.
func TestGravesHeldForTheLongestQueryTimeout(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := openCatalog(t, dsn), openCatalog(t, dsn)
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	id, err := a.PutLogstore(ctx, duckdb.LogstoreRecord{Project: "p", Logstore: "l", TTLDays: 7, Index: "null", Columns: "[]"})
	require.NoError(t, err)
	ids, err := a.NewSegmentIDs(ctx, 5)
	require.NoError(t, err)
	var segs []duckdb.SegmentRecord
	for i, sid := range ids {
		segs = append(segs, seg(sid, id, int32(100+i), 5))
	}
	require.NoError(t, a.AddSegments(ctx, segs, nil, nil))
	// dueIn is how far ahead the grave of segment i is due, by the
	// database's clock.
	dueIn := func(i int) time.Duration {
		var secs float64
		require.NoError(t, pool.QueryRow(ctx, "SELECT extract(epoch FROM due - now())::float8 FROM store_graves WHERE key = $1",
			segs[i].Key()).Scan(&secs))
		return time.Duration(secs * float64(time.Second))
	}

	require.NoError(t, a.RegisterNode(ctx, duckdb.NodeRecord{Name: "short", QueryTimeout: 100 * time.Millisecond, TTL: time.Hour}))
	require.NoError(t, b.RegisterNode(ctx, duckdb.NodeRecord{Name: "long", QueryTimeout: time.Hour, TTL: time.Hour}))
	require.NoError(t, a.RegisterNode(ctx, duckdb.NodeRecord{Name: "short", QueryTimeout: 100 * time.Millisecond, TTL: time.Hour}), "renewal")
	n, err := a.ExpireDays(ctx, id, 101, duckdb.Hold{QueryTimeout: 100 * time.Millisecond, Delay: time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Greater(t, dueIn(0), 119*time.Minute, "kept for twice the other node's 1h timeout, not the remover's 100ms")
	graves, err := a.DueGraves(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, graves)

	// The long node's registration runs out (it stopped and did not come
	// back): it no longer holds graves.
	require.NoError(t, b.RegisterNode(ctx, duckdb.NodeRecord{Name: "long", QueryTimeout: time.Hour, TTL: -time.Second}))
	_, err = a.ExpireDays(ctx, id, 102, duckdb.Hold{QueryTimeout: 100 * time.Millisecond, Delay: time.Millisecond})
	require.NoError(t, err)
	require.Less(t, dueIn(1), time.Minute, "the short node's 100ms counts now")
	require.Eventually(t, func() bool {
		graves, err := a.DueGraves(ctx, 10)
		require.NoError(t, err)
		return len(graves) == 1 && graves[0] == segs[1].Key()
	}, 30*time.Second, 50*time.Millisecond)

	// A removal in progress (here waiting for a row another transaction
	// locked) holds up a node registering until it commits.
	lock, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = lock.Rollback(ctx) }()
	_, err = lock.Exec(ctx, "SELECT id FROM store_segments WHERE id = $1 FOR UPDATE", ids[2])
	require.NoError(t, err)
	merged, err := a.NewSegmentIDs(ctx, 1)
	require.NoError(t, err)
	replaced := make(chan error, 1)
	go func() {
		replaced <- a.ReplaceSegments(ctx, []int64{ids[2]}, seg(merged[0], id, 102, 5), duckdb.Hold{QueryTimeout: 100 * time.Millisecond})
	}()
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted").Scan(&waiting))
		return waiting == 1
	}, 30*time.Second, 10*time.Millisecond, "the replacement holds the nodes lock")
	registered := make(chan error, 1)
	go func() {
		registered <- b.RegisterNode(ctx, duckdb.NodeRecord{Name: "late", QueryTimeout: 3 * time.Hour, TTL: time.Hour})
	}()
	select {
	case err := <-registered:
		t.Fatalf("a node registered while a removal was in progress (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, lock.Commit(ctx))
	require.NoError(t, <-replaced)
	require.NoError(t, <-registered)
	got, err := b.Segments(ctx, id, 102, 102, 0, 1<<40)
	require.NoError(t, err)
	require.Equal(t, merged[0], got[0].ID, "the late node's queries see the replacement only")
	_, err = a.ExpireDays(ctx, id, 104, duckdb.Hold{QueryTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	require.Greater(t, dueIn(3), 359*time.Minute, "the late node's 3h timeout counts from its registration on")
}
