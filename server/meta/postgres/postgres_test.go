package postgres_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/pgtest"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/meta/metatest"
	"github.com/sluicelog/sluice/server/meta/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Store { return open(t, pgtest.DSN(t)) })
}

// Two nodes on one database see each other's changes at once, and a
// config's raw bytes come back exactly as sent.
func TestSharedBetweenNodes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	require.NoError(t, a.CreateProject(ctx, meta.Project{Name: "p"}))
	require.NoError(t, b.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: "l", TTL: 3}))
	ls, err := a.GetLogstore(ctx, "p", "l")
	require.NoError(t, err)
	require.Equal(t, 3, ls.TTL)
	raw := `{"z": 1,  "a": [1, 2], "unknown": {"k": "v"}}`
	require.NoError(t, a.CreateConfig(ctx, meta.Config{Project: "p", Name: "c", Raw: json.RawMessage(raw)}))
	c, err := b.GetConfig(ctx, "p", "c")
	require.NoError(t, err)
	require.Equal(t, raw, string(c.Raw), "kept byte for byte")
	require.Error(t, a.CreateConfig(ctx, meta.Config{Project: "p", Name: "bad", Raw: json.RawMessage(`{`)}))
}

// Nodes starting together against a new database migrate it once.
func TestConcurrentMigration(t *testing.T) {
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	stores := make([]*postgres.Store, 4)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(context.Background(), dsn)
		}()
	}
	wg.Wait()
	for i := range stores {
		require.NoError(t, errs[i])
		require.NoError(t, stores[i].Close())
	}
}

func TestBadAddress(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://x@127.0.0.1:1/db?connect_timeout=1&sslmode=disable")
	require.Error(t, err)
	_, err = postgres.Open(context.Background(), "::nonsense::")
	require.ErrorContains(t, err, "postgres://")
}

// A lease has one holder among nodes: others are refused while it lasts,
// the holder renews it, and another node takes it once it expires.
func TestLeaseOneHolder(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	got, err := a.TryLease(ctx, "alerts", "a", time.Hour)
	require.NoError(t, err)
	require.True(t, got)
	got, err = b.TryLease(ctx, "alerts", "b", time.Hour)
	require.NoError(t, err)
	require.False(t, got, "held by a")
	got, err = a.TryLease(ctx, "alerts", "a", time.Millisecond)
	require.NoError(t, err)
	require.True(t, got, "the holder renews")
	require.Eventually(t, func() bool {
		got, err := b.TryLease(ctx, "alerts", "b", time.Hour)
		return err == nil && got
	}, time.Minute, 10*time.Millisecond, "expired: b takes it")
	got, err = a.TryLease(ctx, "alerts", "a", time.Hour)
	require.NoError(t, err)
	require.False(t, got)
}
