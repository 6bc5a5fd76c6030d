package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Assigner is what the API needs of a coordinator: Local (one server,
// state in memory) or Shared (several servers, state in a database).
type Assigner interface {
	// Heartbeat: see Coordinator.Heartbeat.
	Heartbeat(ctx context.Context, k GroupKey, consumer string, held []int, shards int, timeout time.Duration) ([]int, error)
	// Holder: see Coordinator.Holder.
	Holder(ctx context.Context, k GroupKey, shard int) (string, bool, error)
	// Alive: see Coordinator.Alive.
	Alive(ctx context.Context, k GroupKey, consumer string) (bool, error)
	// Created: see Coordinator.Created.
	Created(ctx context.Context, k GroupKey) error
	// Forget: see Coordinator.Forget.
	Forget(ctx context.Context, k GroupKey) error
}

// Local is the Assigner of one server: a Coordinator in memory.
type Local struct{ C *Coordinator }

var _ Assigner = Local{}

// Heartbeat implements Assigner.
func (l Local) Heartbeat(_ context.Context, k GroupKey, consumer string, held []int, shards int, timeout time.Duration) ([]int, error) {
	return l.C.Heartbeat(k, consumer, held, shards, timeout), nil
}

// Holder implements Assigner.
func (l Local) Holder(_ context.Context, k GroupKey, shard int) (string, bool, error) {
	h, ok := l.C.Holder(k, shard)
	return h, ok, nil
}

// Alive implements Assigner.
func (l Local) Alive(_ context.Context, k GroupKey, consumer string) (bool, error) {
	return l.C.Alive(k, consumer), nil
}

// Created implements Assigner.
func (l Local) Created(_ context.Context, k GroupKey) error { l.C.Created(k); return nil }

// Forget implements Assigner.
func (l Local) Forget(_ context.Context, k GroupKey) error { l.C.Forget(k); return nil }

// Backend keeps the groups' state for Shared.
type Backend interface {
	// Update calls fn with the group's stored state (nil when none) and
	// the backend's clock, under a lock that serialises it with every
	// other server's Update of the group, and stores what fn returns
	// (nil: the group's state is deleted).
	Update(ctx context.Context, k GroupKey, fn func(state []byte, now time.Time) ([]byte, error)) error
}

// Shared is the Assigner of several servers: every call runs the same
// decisions as Coordinator on the group's state loaded from the Backend
// under its lock, with the backend's clock (servers' clocks need not
// agree), and stores it back. Consumers of one group may then heartbeat
// to different servers, and a server restart loses nothing (no wait for
// consumers to report their shards again, unlike Local).
type Shared struct{ B Backend }

var _ Assigner = Shared{}

// groupState is a group's stored form.
type groupState struct {
	Members   map[string]time.Time `json:"members"`
	Timeout   time.Duration        `json:"timeout"`
	Owner     map[int]string       `json:"owner"`
	Releasing map[int]bool         `json:"releasing"`
	Settled   time.Time            `json:"settled"`
}

// with runs fn on a Coordinator holding only k's stored state.
func (s Shared) with(ctx context.Context, k GroupKey, fn func(c *Coordinator)) error {
	return s.B.Update(ctx, k, func(state []byte, now time.Time) ([]byte, error) {
		c := New(func() time.Time { return now })
		if state != nil {
			var st groupState
			if err := json.Unmarshal(state, &st); err != nil {
				return nil, fmt.Errorf("consumer group %s/%s/%s: stored state: %w", k.Project, k.Logstore, k.Group, err)
			}
			g := c.group(k)
			g.timeout, g.settled = st.Timeout, st.Settled
			for m, t := range st.Members {
				g.members[m] = t
			}
			for sh, o := range st.Owner {
				g.owner[sh] = o
			}
			for sh, r := range st.Releasing {
				g.releasing[sh] = r
			}
		}
		fn(c)
		g := c.groups[k]
		if g == nil {
			return nil, nil
		}
		return json.Marshal(groupState{Members: g.members, Timeout: g.timeout, Owner: g.owner, Releasing: g.releasing, Settled: g.settled})
	})
}

// Heartbeat implements Assigner.
func (s Shared) Heartbeat(ctx context.Context, k GroupKey, consumer string, held []int, shards int, timeout time.Duration) ([]int, error) {
	var out []int
	err := s.with(ctx, k, func(c *Coordinator) { out = c.Heartbeat(k, consumer, held, shards, timeout) })
	return out, err
}

// Holder implements Assigner.
func (s Shared) Holder(ctx context.Context, k GroupKey, shard int) (h string, ok bool, err error) {
	err = s.with(ctx, k, func(c *Coordinator) { h, ok = c.Holder(k, shard) })
	return h, ok, err
}

// Alive implements Assigner.
func (s Shared) Alive(ctx context.Context, k GroupKey, consumer string) (ok bool, err error) {
	err = s.with(ctx, k, func(c *Coordinator) { ok = c.Alive(k, consumer) })
	return ok, err
}

// Created implements Assigner.
func (s Shared) Created(ctx context.Context, k GroupKey) error {
	return s.with(ctx, k, func(c *Coordinator) { c.Created(k) })
}

// Forget implements Assigner.
func (s Shared) Forget(ctx context.Context, k GroupKey) error {
	return s.with(ctx, k, func(c *Coordinator) { c.Forget(k) })
}
