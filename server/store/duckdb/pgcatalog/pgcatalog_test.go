package pgcatalog_test

import (
	"context"
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

	require.NoError(t, a.AddSegments(ctx, []duckdb.SegmentRecord{seg(ids[0], id, 100, 5), seg(ids[1], id, 100, 5), seg(ids[2], id, 101, 5)}))
	require.ErrorIs(t, a.AddSegments(ctx, []duckdb.SegmentRecord{seg(more[0], 9999, 100, 5)}), store.ErrLogstoreNotFound)
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
