// Package consumer coordinates the consumers of consumer groups: from
// their heartbeats it decides which consumer holds which shard, so the
// Log Service's consumer libraries, unchanged, split a logstore's shards
// between the processes of a group and hand them over when one joins,
// leaves or dies.
//
// The protocol is the Log Service's: a consumer heartbeats every few
// seconds with the shards it is processing and gets back the shards it
// should process. Assignment is sticky and balanced: every live consumer
// gets ⌊n/k⌋ or ⌈n/k⌉ of the n shards, keeping those it has. A shard moves
// in two steps so that two consumers never process it at once: it is
// withheld from its holder's heartbeat replies (the library then stops its
// worker, saves the checkpoint and stops reporting the shard), and only
// once the holder no longer reports it does it go to another consumer,
// which resumes from that checkpoint. A consumer silent for the group's
// timeout is gone and its shards are free at once.
//
// State is in memory: after a server restart the consumers' next
// heartbeats rebuild it (a consumer reporting a shard nobody holds keeps
// it), and for half the group's timeout (longer than a heartbeat
// interval) no free shard is handed out, so that a consumer that has not
// reported yet is not doubled. A group created since the start needs no
// such wait (Created). With several sluice-servers (shared storage) the
// same decisions run on state kept in PostgreSQL (Shared, pgconsumer),
// so a group's consumers may heartbeat to different servers.
package consumer

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// GroupKey names a consumer group.
type GroupKey struct {
	Project, Logstore, Group string
}

// Coordinator holds the membership and assignment of every group. It is
// safe for concurrent use.
type Coordinator struct {
	now func() time.Time

	mu     sync.Mutex
	groups map[GroupKey]*group
}

type group struct {
	members   map[string]time.Time // consumer -> last heartbeat
	timeout   time.Duration
	owner     map[int]string // shard -> consumer holding it
	releasing map[int]bool   // withheld from its owner until the owner stops reporting it
	settled   time.Time      // free shards are handed out from then on
}

// New returns a coordinator reading time from now (nil: time.Now).
func New(now func() time.Time) *Coordinator {
	if now == nil {
		now = time.Now
	}
	return &Coordinator{now: now, groups: map[GroupKey]*group{}}
}

func (c *Coordinator) group(k GroupKey) *group {
	g := c.groups[k]
	if g == nil {
		g = &group{members: map[string]time.Time{}, owner: map[int]string{}, releasing: map[int]bool{}}
		c.groups[k] = g
	}
	return g
}

// Heartbeat records that consumer is alive and processing held, and
// returns the shards (of 0..shards-1) it should process, ascending. A
// consumer silent for timeout is dropped and its shards reassigned.
func (c *Coordinator) Heartbeat(k GroupKey, consumer string, held []int, shards int, timeout time.Duration) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, known := c.groups[k]
	g := c.group(k)
	now := c.now()
	if !known {
		g.settled = now.Add(timeout / 2)
	}
	g.timeout = timeout
	g.members[consumer] = now
	g.expire(now)
	for s := range g.owner {
		if s >= shards {
			g.free(s)
		}
	}
	reported := map[int]bool{}
	for _, s := range held {
		if s >= 0 && s < shards {
			reported[s] = true
		}
	}
	for s, o := range g.owner {
		if o == consumer && g.releasing[s] && !reported[s] {
			g.free(s) // stopped: now it can move
		}
	}
	for s := range reported {
		if _, ok := g.owner[s]; !ok {
			g.owner[s] = consumer // held before a restart of this server
		}
	}
	g.balance(shards, !now.Before(g.settled))
	var out []int
	for s, o := range g.owner {
		if o == consumer && !g.releasing[s] {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	if out == nil {
		out = []int{}
	}
	return out
}

// expire drops members silent for longer than the timeout.
func (g *group) expire(now time.Time) {
	for m, seen := range g.members {
		if now.Sub(seen) > g.timeout {
			g.drop(m)
		}
	}
}

func (g *group) drop(m string) {
	delete(g.members, m)
	for s, o := range g.owner {
		if o == m {
			g.free(s)
		}
	}
}

func (g *group) free(s int) {
	delete(g.owner, s)
	delete(g.releasing, s)
}

// balance sets releases and assigns free shards so that each member ends
// with its target count, moving as few shards as possible.
func (g *group) balance(shards int, assign bool) {
	if len(g.members) == 0 {
		return
	}
	owned := map[string][]int{}
	for s, o := range g.owner {
		owned[o] = append(owned[o], s)
	}
	members := make([]string, 0, len(g.members))
	for m := range g.members {
		members = append(members, m)
		slices.Sort(owned[m])
	}
	// The larger targets go to those holding most already.
	slices.SortFunc(members, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(owned[b]), len(owned[a])), cmp.Compare(a, b))
	})
	target := map[string]int{}
	for i, m := range members {
		target[m] = shards / len(members)
		if i < shards%len(members) {
			target[m]++
		}
	}
	for _, m := range members {
		keep := 0
		for _, s := range owned[m] { // ascending: keep the lowest shards
			if keep < target[m] {
				delete(g.releasing, s) // cancel a release no longer needed
				keep++
			} else {
				g.releasing[s] = true
			}
		}
	}
	if !assign {
		return
	}
	var free []int
	for s := range shards {
		if _, ok := g.owner[s]; !ok {
			free = append(free, s)
		}
	}
	for _, m := range members {
		for len(owned[m]) < target[m] && len(free) > 0 {
			g.owner[free[0]] = m
			owned[m] = append(owned[m], free[0])
			free = free[1:]
		}
	}
}

// Holder returns the consumer holding shard (assigned, or being
// released by it) and whether that consumer is alive.
func (c *Coordinator) Holder(k GroupKey, shard int) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[k]
	if g == nil {
		return "", false
	}
	g.expire(c.now())
	o, ok := g.owner[shard]
	return o, ok
}

// Alive reports whether consumer has heartbeated within the group's timeout.
func (c *Coordinator) Alive(k GroupKey, consumer string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[k]
	if g == nil {
		return false
	}
	g.expire(c.now())
	_, ok := g.members[consumer]
	return ok
}

// Member is a live consumer of a group, for status views.
type Member struct {
	Name          string
	LastHeartbeat time.Time
	Shards        []int // held, ascending (including those being released)
}

// Members lists a group's live consumers by name.
func (c *Coordinator) Members(k GroupKey) []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[k]
	if g == nil {
		return nil
	}
	g.expire(c.now())
	var out []Member
	for m, seen := range g.members {
		mb := Member{Name: m, LastHeartbeat: seen}
		for s, o := range g.owner {
			if o == m {
				mb.Shards = append(mb.Shards, s)
			}
		}
		slices.Sort(mb.Shards)
		out = append(out, mb)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Created tells the coordinator a group was just created: nobody can
// hold its shards yet, so they are handed out at once.
func (c *Coordinator) Created(k GroupKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.group(k).settled = time.Time{}
}

// Forget drops a group's state (the group was deleted).
func (c *Coordinator) Forget(k GroupKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.groups, k)
}
