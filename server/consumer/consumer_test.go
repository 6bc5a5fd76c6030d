package consumer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var k = GroupKey{"p", "l", "g"}

const timeout = 10 * time.Second

func TestJoinHandOverAndTimeout(t *testing.T) {
	clk := &clock{time.Unix(1700000000, 0)}
	c := New(clk.now)
	c.Created(k)
	// Alone, a consumer gets every shard.
	require.Equal(t, []int{0, 1, 2, 3}, c.Heartbeat(k, "a", nil, 4, timeout))
	require.Equal(t, []int{0, 1, 2, 3}, c.Heartbeat(k, "a", []int{0, 1, 2, 3}, 4, timeout))

	// b joins: nothing yet, a's shards are still a's.
	require.Empty(t, c.Heartbeat(k, "b", nil, 4, timeout))
	// a is told to give up two; while it still reports them they stay a's.
	require.Equal(t, []int{0, 1}, c.Heartbeat(k, "a", []int{0, 1, 2, 3}, 4, timeout))
	h, _ := c.Holder(k, 3)
	require.Equal(t, "a", h)
	require.Empty(t, c.Heartbeat(k, "b", nil, 4, timeout), "never two consumers on a shard")
	require.Equal(t, []int{0, 1}, c.Heartbeat(k, "a", []int{0, 1, 2, 3}, 4, timeout))
	// a stopped 2 and 3 (checkpoints saved): b gets them.
	require.Equal(t, []int{0, 1}, c.Heartbeat(k, "a", []int{0, 1}, 4, timeout))
	require.Equal(t, []int{2, 3}, c.Heartbeat(k, "b", nil, 4, timeout))
	h, _ = c.Holder(k, 3)
	require.Equal(t, "b", h)
	require.Equal(t, []int{2, 3}, c.Heartbeat(k, "b", []int{2, 3}, 4, timeout))

	// a goes silent past the timeout: b gets everything.
	clk.t = clk.t.Add(6 * time.Second)
	require.Equal(t, []int{2, 3}, c.Heartbeat(k, "b", []int{2, 3}, 4, timeout))
	clk.t = clk.t.Add(6 * time.Second)
	require.Equal(t, []int{0, 1, 2, 3}, c.Heartbeat(k, "b", []int{2, 3}, 4, timeout))
	require.False(t, c.Alive(k, "a"))
	require.True(t, c.Alive(k, "b"))
	ms := c.Members(k)
	require.Len(t, ms, 1)
	require.Equal(t, []int{0, 1, 2, 3}, ms[0].Shards)
}

func TestBalanceIsStickyAndEven(t *testing.T) {
	clk := &clock{time.Unix(1700000000, 0)}
	c := New(clk.now)
	c.Created(k)
	held := map[string][]int{}
	// Three consumers heartbeat in turn, reporting what they were given
	// (as the library does once its workers run), until stable.
	for range 6 {
		for _, m := range []string{"a", "b", "c"} {
			held[m] = c.Heartbeat(k, m, held[m], 7, timeout)
		}
	}
	seen := map[int]string{}
	for m, ss := range held {
		require.GreaterOrEqual(t, len(ss), 2, m)
		require.LessOrEqual(t, len(ss), 3, m)
		for _, s := range ss {
			require.Empty(t, seen[s], "shard %d twice", s)
			seen[s] = m
		}
	}
	require.Len(t, seen, 7)
	before := map[string][]int{"a": held["a"], "b": held["b"], "c": held["c"]}
	for _, m := range []string{"a", "b", "c"} {
		require.Equal(t, before[m], c.Heartbeat(k, m, held[m], 7, timeout), "stable")
	}
}

// After a server restart (state lost) consumers keep the shards they
// report, a shard reported by two goes to the first, and free shards wait
// half the timeout for their holder to report them.
func TestRestartAdoptsReportedShards(t *testing.T) {
	clk := &clock{time.Unix(1700000000, 0)}
	c := New(clk.now)
	require.Equal(t, []int{0, 2}, c.Heartbeat(k, "a", []int{0, 2}, 4, timeout), "1 and 3 may still be b's")
	require.Equal(t, []int{1}, c.Heartbeat(k, "b", []int{1, 2}, 4, timeout))
	clk.t = clk.t.Add(timeout/2 + time.Second)
	require.Equal(t, []int{0, 2}, c.Heartbeat(k, "a", []int{0, 2}, 4, timeout))
	require.Equal(t, []int{1, 3}, c.Heartbeat(k, "b", []int{1}, 4, timeout))
	c.Forget(k)
	require.Empty(t, c.Members(k))
}
