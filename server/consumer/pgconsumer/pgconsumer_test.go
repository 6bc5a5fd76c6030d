package pgconsumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/pgtest"
	"github.com/sluicelog/sluice/server/consumer"
	"github.com/sluicelog/sluice/server/consumer/pgconsumer"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// server is one sluice-server's view of the shared state: its own pool.
func server(t *testing.T, dsn string) consumer.Shared {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b, err := pgconsumer.Open(context.Background(), pool)
	require.NoError(t, err)
	return consumer.Shared{B: b}
}

// Two consumers of a group heartbeating to different servers split its
// shards as they would on one server: a shard moves only once its holder
// stopped reporting it, so it is never held twice; a new server process
// (s3) sees the same assignment at once.
func TestConsumersOnTwoServers(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s1, s2 := server(t, dsn), server(t, dsn)
	k := consumer.GroupKey{Project: "p", Logstore: "l", Group: "g"}
	const timeout = time.Minute
	require.NoError(t, s1.Created(ctx, k))
	hb := func(s consumer.Shared, name string, held []int) []int {
		t.Helper()
		got, err := s.Heartbeat(ctx, k, name, held, 4, timeout)
		require.NoError(t, err)
		return got
	}
	require.Equal(t, []int{0, 1, 2, 3}, hb(s1, "a", nil))
	require.Empty(t, hb(s2, "b", nil), "a still holds every shard")
	require.Equal(t, []int{0, 1}, hb(s1, "a", []int{0, 1, 2, 3}), "a is asked to give up two")
	require.Empty(t, hb(s2, "b", nil), "not before a stopped them")
	h, ok, err := s2.Holder(ctx, k, 3)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "a", h)
	require.Equal(t, []int{0, 1}, hb(s1, "a", []int{0, 1}))
	require.Equal(t, []int{2, 3}, hb(s2, "b", nil))

	s3 := server(t, dsn)
	alive, err := s3.Alive(ctx, k, "b")
	require.NoError(t, err)
	require.True(t, alive)
	h, _, err = s3.Holder(ctx, k, 2)
	require.NoError(t, err)
	require.Equal(t, "b", h)
	require.Equal(t, []int{0, 1}, hb(s3, "a", []int{0, 1}), "a moved to another server: same shards")

	require.NoError(t, s2.Forget(ctx, k))
	alive, err = s1.Alive(ctx, k, "a")
	require.NoError(t, err)
	require.False(t, alive, "a deleted group has no members")
}
