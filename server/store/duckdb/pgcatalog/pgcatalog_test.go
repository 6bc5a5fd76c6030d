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

	require.NoError(t, a.AddSegments(ctx, []duckdb.SegmentRecord{seg(ids[0], id, 100, 5), seg(ids[1], id, 100, 5), seg(ids[2], id, 101, 5)}, nil))
	require.ErrorIs(t, a.AddSegments(ctx, []duckdb.SegmentRecord{seg(more[0], 9999, 100, 5)}, nil), store.ErrLogstoreNotFound)
	got, err := b.Segments(ctx, id, 100, 100, 0, 1<<40)
	require.NoError(t, err)
	require.Len(t, got, 2)
	got, err = b.Segments(ctx, id, 100, 101, 101*86400+200, 1<<40)
	require.NoError(t, err)
	require.Empty(t, got, "pruned by time range")

	small, err := a.SmallSegments(ctx, 10, 2, 100)
	require.NoError(t, err)
	require.Len(t, small, 2, "day 100 has two small segments with the same columns")
	due := time.Now().Add(-time.Second) // already due
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

	n, err := a.ExpireDays(ctx, id, 101, time.Now().Add(time.Hour))
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
	require.NoError(t, a.AddSegments(ctx, nil, c1))
	c2 := []duckdb.ShardChunk{chunk(0, 4, 200, 2)}
	require.NoError(t, b.AddSegments(ctx, nil, c2))
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
	require.Equal(t, int64(3), c)
	c, err = a.ShardSeek(ctx, ls, 0, 300)
	require.NoError(t, err)
	require.Equal(t, int64(7), c, "after everything: the end")

	n, err := a.ExpireShards(ctx, ls, 150, time.Now().Add(-time.Second))
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

	require.NoError(t, a.DropLogstore(ctx, ls, time.Now().Add(-time.Second)))
	graves, err = a.DueGraves(ctx, 10)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{duckdb.ShardObjectKey(ls, 1), duckdb.ShardObjectKey(ls, 2)}, graves)
}

// Merge candidates are the unmerged objects of the oldest window that
// ended before the cutoff; a swap moves their chunks (cursors unchanged)
// and buries the old objects; a swap whose chunks changed meanwhile is
// void.
func TestShardMergeCatalog(t *testing.T) {
	ctx := context.Background()
	a := openCatalog(t, pgtest.DSN(t))
	ls, err := a.PutLogstore(ctx, duckdb.LogstoreRecord{Project: "p", Logstore: "l", TTLDays: 1, Index: "null", Columns: "[]"})
	require.NoError(t, err)
	chunk := func(shard, groups int, recv, obj, off int64) duckdb.ShardChunk {
		return duckdb.ShardChunk{Logstore: ls, Shard: shard, Groups: groups, Received: recv, Object: obj, Off: off, Len: 10}
	}
	require.NoError(t, a.AddSegments(ctx, nil, []duckdb.ShardChunk{chunk(0, 3, 100, 1, 0), chunk(1, 2, 105, 1, 10)}))
	require.NoError(t, a.AddSegments(ctx, nil, []duckdb.ShardChunk{chunk(0, 4, 150, 2, 0)}))
	require.NoError(t, a.AddSegments(ctx, nil, []duckdb.ShardChunk{chunk(0, 1, 1500, 3, 0)}))

	got, err := a.ShardMergeCandidates(ctx, 1000, 0, 10)
	require.NoError(t, err)
	require.Empty(t, got, "no window over")
	got, err = a.ShardMergeCandidates(ctx, 1000, 1000, 10)
	require.NoError(t, err)
	require.Len(t, got, 3, "objects 1 and 2 (window [0, 1000)), every chunk")
	require.Equal(t, []int64{1, 1, 2}, []int64{got[0].Object, got[1].Object, got[2].Object})
	require.Equal(t, []int64{0, 0, 3}, []int64{got[0].First, got[1].First, got[2].First})

	moved := slices.Clone(got)
	for i := range moved {
		moved[i].Object, moved[i].Off = 9, int64(i)*10
	}
	require.NoError(t, a.ReplaceShardObjects(ctx, ls, []int64{1, 2}, moved, time.Now().Add(-time.Second)))
	begin, end, chunks, err := a.ShardChunks(ctx, ls, 0, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{0, 8}, []int64{begin, end}, "cursors unchanged")
	require.Len(t, chunks, 3)
	require.Equal(t, []int64{0, 3, 7}, []int64{chunks[0].First, chunks[1].First, chunks[2].First})
	require.Equal(t, []int64{9, 9, 3}, []int64{chunks[0].Object, chunks[1].Object, chunks[2].Object})
	require.Equal(t, []int64{0, 20}, []int64{chunks[0].Off, chunks[1].Off})
	require.Equal(t, []int{3, 4}, []int{chunks[0].Groups, chunks[1].Groups})
	require.Equal(t, int64(150), chunks[1].Received, "receive times unchanged")
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

	require.ErrorIs(t, a.ReplaceShardObjects(ctx, ls, []int64{1, 2}, moved, time.Now()), duckdb.ErrConflict,
		"a second merge of the same objects is void")
	n, err := a.ExpireShards(ctx, ls, 1000, time.Now())
	require.NoError(t, err)
	require.Equal(t, 3, n)
	graves, err = a.DueGraves(ctx, 10)
	require.NoError(t, err)
	require.NotContains(t, graves, duckdb.ShardObjectKey(ls, 3))
	moved3 := slices.Clone(got)
	moved3[0].Object = 10
	require.NoError(t, a.ReplaceShardObjects(ctx, ls, []int64{3}, moved3, time.Now()))
	require.ErrorIs(t, a.ReplaceShardObjects(ctx, ls, []int64{10}, nil, time.Now()), duckdb.ErrConflict,
		"chunks added or removed meanwhile void the swap")
}
