package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Each DSN is a database of its own, empty, reachable.
func TestDSN(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now()
	a := pgtest.DSN(t)
	t.Log("first", time.Since(t0))
	t0 = time.Now()
	b := pgtest.DSN(t)
	t.Log("second", time.Since(t0))
	require.NotEqual(t, a, b)
	ca, err := pgx.Connect(ctx, a)
	require.NoError(t, err)
	defer ca.Close(ctx)
	_, err = ca.Exec(ctx, "CREATE TABLE x (i int)")
	require.NoError(t, err)
	cb, err := pgx.Connect(ctx, b)
	require.NoError(t, err)
	defer cb.Close(ctx)
	var n int
	require.NoError(t, cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'").Scan(&n))
	require.Zero(t, n, "databases are separate")
}
