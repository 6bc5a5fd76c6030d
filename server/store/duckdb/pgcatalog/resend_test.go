package pgcatalog_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/duckdb"
	"github.com/sluicelog/sluice/server/store/duckdb/pgcatalog"
)

// packed is group with a __pack_id__ tag, as the agent and the SDK
// producer send them.
func packed(id, tag string, t0 time.Time, n int) protocol.LogGroup {
	g := group(tag, t0, n)
	g.LogTags = []protocol.LogTag{{Key: "__pack_id__", Value: id}}
	return g
}

// shardGroups is how many groups shard 0 holds, read through n.
func shardGroups(t *testing.T, n *duckdb.Store) int {
	t.Helper()
	return len(pullShard(t, n, 0, 0))
}

// A client that got no answer sends the group again, to the same node or
// another one: it is acknowledged and stored once, for queries and for
// PullLogs. A different group under the same pack id, and groups without
// one, are stored every time.
func TestResentGroupsStoredOnce(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	regB := prometheus.NewRegistry()
	a, b := c.node(t, nodeOpts{}), c.node(t, nodeOpts{registry: regB})
	require.NoError(t, a.EnsureLogstore(ctx, spec()))
	now := time.Now()

	g := packed("5EED-1", "sent", now, 3)
	require.NoError(t, a.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{g}, now))
	require.NoError(t, b.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{g}, now.Add(time.Second)), "re-sent to another node")
	require.NoError(t, a.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{g}, now.Add(2*time.Second)), "re-sent to the same node")
	require.Equal(t, 3, count(t, a, "tag: sent"))
	require.Equal(t, 3, count(t, b, "tag: sent"))
	require.Equal(t, 1, shardGroups(t, b))
	require.InDelta(t, 1, metric(t, regB, "sluice_store_resent_groups_total"), 0)

	// The same pack id on other content (a client that restarted its
	// numbering) is a different group.
	require.NoError(t, b.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{packed("5EED-1", "other", now, 2)}, now))
	require.Equal(t, 2, count(t, a, "tag: other"))
	// Without a pack id nothing tells a re-send: stored each time.
	plain := group("plain", now, 4)
	require.NoError(t, a.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{plain}, now))
	require.NoError(t, b.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{plain}, now))
	require.Equal(t, 8, count(t, a, "tag: plain"))

	// A request of several groups with one new group is stored whole:
	// regrouped re-sends are stored again (at least once), never lost.
	h := packed("5EED-2", "batch", now, 1)
	require.NoError(t, a.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{g, h}, now))
	require.Equal(t, 1, count(t, b, "tag: batch"))
	require.Equal(t, 6, count(t, b, "tag: sent"))
	require.NoError(t, b.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{g, h}, now), "both groups committed before")
	require.Equal(t, 1, count(t, b, "tag: batch"))
	require.Equal(t, 6, shardGroups(t, a))

	// In one group commit, the second of two identical writes is not
	// stored again either.
	k := packed("5EED-3", "twice", now, 2)
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- a.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{k}, now) }()
	}
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	require.Equal(t, 2, count(t, b, "tag: twice"))
}

// staleLookups is a catalog whose look-up of committed pack keys answers
// "none" the first time, as when two nodes commit the same re-sent group
// at once and both looked before either committed.
type staleLookups struct {
	duckdb.Catalog
	stale atomic.Bool
}

func (c *staleLookups) CommittedPacks(ctx context.Context, keys []duckdb.PackKey) (map[duckdb.PackKey]bool, error) {
	if c.stale.CompareAndSwap(true, false) {
		return nil, nil
	}
	return c.Catalog.CommittedPacks(ctx, keys)
}

// Two nodes committing the same group at once: the database lets one
// commit it; the other's write fails with a retryable error and, sent
// again, is acknowledged without being stored.
func TestResentGroupCommittedMeanwhile(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	stale := &staleLookups{}
	a := c.node(t, nodeOpts{})
	b := c.node(t, nodeOpts{catalog: func(cat duckdb.Catalog) duckdb.Catalog { stale.Catalog = cat; return stale }})
	require.NoError(t, a.EnsureLogstore(ctx, spec()))
	now := time.Now()
	g := packed("C0FFEE-7", "raced", now, 5)
	require.NoError(t, a.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{g}, now))
	stale.stale.Store(true)
	err := b.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{g}, now)
	require.ErrorIs(t, err, store.ErrOverloaded, "retryable (503), not acknowledged")
	require.ErrorContains(t, err, "committed meanwhile by another node")
	require.Equal(t, 5, count(t, b, "tag: raced"), "the failed commit left nothing visible")
	require.NoError(t, b.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{g}, now), "the client's retry")
	require.Equal(t, 5, count(t, a, "tag: raced"))
	require.Equal(t, 1, shardGroups(t, a))
}

// Pack keys older than the window are forgotten: a group sent again
// after that is stored again.
func TestForgetPacks(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a := c.node(t, nodeOpts{})
	require.NoError(t, a.EnsureLogstore(ctx, spec()))
	now := time.Now()
	g := packed("AB-1", "old", now, 2)
	require.NoError(t, a.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{g}, now))

	pool, err := pgxpool.New(ctx, c.dsn)
	require.NoError(t, err)
	defer pool.Close()
	cat, err := pgcatalog.Open(ctx, pool)
	require.NoError(t, err)
	n, err := cat.ForgetPacks(ctx, time.Hour, 100)
	require.NoError(t, err)
	require.Zero(t, n, "recorded just now")
	require.NoError(t, a.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{g}, now))
	require.Equal(t, 2, count(t, a, "tag: old"))

	time.Sleep(10 * time.Millisecond)
	n, err = cat.ForgetPacks(ctx, time.Millisecond, 100)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, a.WriteShard(ctx, "p", "l", 0, []protocol.LogGroup{g}, now))
	require.Equal(t, 4, count(t, a, "tag: old"), "sent again after the window: stored again")
}
