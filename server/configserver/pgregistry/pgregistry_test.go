package pgregistry_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/pgtest"
	"github.com/sluicelog/sluice/server/configserver"
	"github.com/sluicelog/sluice/server/configserver/pgregistry"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, dsn string) *pgregistry.Registry {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	r, err := pgregistry.Open(context.Background(), pool)
	require.NoError(t, err)
	return r
}

// Two servers write the same agent: the newer heartbeat is kept whatever
// the order of the writes; agents silent past the expiry are dropped; each
// server reads what the other wrote.
func TestRegistry(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn) // the second Open finds the schema migrated
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	rec := func(v string) []byte { return []byte(`{"instanceId":"x","version":"` + v + `"}`) }
	require.NoError(t, a.PutAgents(ctx, []configserver.SharedAgent{
		{InstanceID: "x", LastHeartbeat: t0.Add(2 * time.Second), Record: rec("new")},
		{InstanceID: "old", LastHeartbeat: t0.Add(-2 * time.Hour), Record: []byte(`{"instanceId":"old"}`)},
	}, t0.Add(-3*time.Hour)))
	require.NoError(t, b.PutAgents(ctx, []configserver.SharedAgent{
		{InstanceID: "x", LastHeartbeat: t0, Record: rec("stale")}, // a slower server's older heartbeat
	}, t0.Add(-time.Hour)))
	got, err := a.Agents(ctx, t0.Add(-24*time.Hour))
	require.NoError(t, err)
	require.Len(t, got, 1, "the agent silent for 2 h was dropped by the 1 h expiry")
	require.Equal(t, "x", got[0].InstanceID)
	require.JSONEq(t, string(rec("new")), string(got[0].Record), "an older heartbeat never replaces a newer one")
	require.True(t, got[0].LastHeartbeat.Equal(t0.Add(2*time.Second)))
	got, err = b.Agents(ctx, t0.Add(3*time.Second))
	require.NoError(t, err)
	require.Empty(t, got, "only agents heard since")
}
