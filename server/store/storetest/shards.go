package storetest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/store"
)

// numbered returns a group of n logs numbered from first ("seq" key), from
// writer w, whose logs have time t.
func numbered(w, first, n int, t time.Time) protocol.LogGroup {
	g := protocol.LogGroup{Topic: "w" + strconv.Itoa(w), Source: "10.0.0." + strconv.Itoa(w),
		LogTags: []protocol.LogTag{{Key: "__pack_id__", Value: fmt.Sprintf("%X-%X", w, first)}}}
	for i := range n {
		g.Logs = append(g.Logs, protocol.Log{Time: uint32(t.Unix()), Contents: []protocol.LogContent{
			{Key: "writer", Value: strconv.Itoa(w)}, {Key: "seq", Value: strconv.Itoa(first + i)}}})
	}
	return g
}

// pullAll reads a shard from cursor to its end in pieces of at most
// maxGroups groups, checking the cursors advance one per group.
func pullAll(t *testing.T, s store.Store, ls string, shard int, cursor int64, maxGroups int) []protocol.LogGroup {
	t.Helper()
	ctx := context.Background()
	end, err := s.Cursor(ctx, project, ls, shard, store.CursorAt{Kind: store.CursorEnd})
	require.NoError(t, err)
	var out []protocol.LogGroup
	for cursor < end {
		res, err := s.Pull(ctx, project, ls, shard, store.PullRequest{Cursor: cursor, EndCursor: -1, MaxGroups: maxGroups, MaxBytes: 1 << 20})
		require.NoError(t, err)
		require.Positive(t, res.Groups)
		require.LessOrEqual(t, res.Groups, maxGroups)
		require.Equal(t, cursor+int64(res.Groups), res.Next)
		var gl protocol.LogGroupList
		require.NoError(t, gl.Unmarshal(res.Data))
		require.Len(t, gl.LogGroups, res.Groups)
		out = append(out, gl.LogGroups...)
		cursor = res.Next
	}
	return out
}

// testShards: each shard is the ordered sequence of the groups written
// to it, readable by cursor; cursors by time; errors for cursors outside
// the shard.
func testShards(t *testing.T, newStore NewFunc) {
	s := newStore(t, Options{})
	ctx := context.Background()
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: project, Logstore: logstore, TTLDays: 30}))
	for sh := range 2 {
		for _, k := range []store.CursorKind{store.CursorBegin, store.CursorEnd} {
			c, err := s.Cursor(ctx, project, logstore, sh, store.CursorAt{Kind: k})
			require.NoError(t, err)
			require.Zero(t, c, "a shard never written is empty at 0")
		}
	}

	// Four writers, each writing numbered groups alternately to shards 0
	// and 1, one or two groups per write.
	const writers = 4
	start := time.Now()
	plan := func(w int) (writes [][]protocol.LogGroup) {
		seq := 0
		for i := range 40 {
			var gs []protocol.LogGroup
			for range 1 + i%2 {
				gs = append(gs, numbered(w, seq, 3, start))
				seq += 3
			}
			writes = append(writes, gs)
		}
		return writes
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, gs := range plan(w) {
				if err := s.WriteShard(ctx, project, logstore, i%2, gs, time.Now()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	mid := time.Now()
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, s.WriteShard(ctx, project, logstore, 1, []protocol.LogGroup{numbered(99, 0, 1, start)}, time.Now()))

	for sh := range 2 {
		groups := pullAll(t, s, logstore, sh, 0, 7)
		// Per writer, its groups in this shard come complete, in the order
		// written, each exactly as written.
		got := map[string][]protocol.LogGroup{}
		for _, g := range groups {
			got[g.Topic] = append(got[g.Topic], g)
		}
		for w := range writers {
			var want []protocol.LogGroup
			for i, gs := range plan(w) {
				if i%2 == sh {
					want = append(want, gs...)
				}
			}
			require.Equal(t, want, got["w"+strconv.Itoa(w)], "shard %d writer %d", sh, w)
		}
		end, err := s.Cursor(ctx, project, logstore, sh, store.CursorAt{Kind: store.CursorEnd})
		require.NoError(t, err)
		require.Equal(t, int64(len(groups)), end)
	}

	// Cursor by receive time: the group written after mid is the last.
	c, err := s.Cursor(ctx, project, logstore, 1, store.CursorAt{Kind: store.CursorTime, Time: mid.Add(5 * time.Millisecond)})
	require.NoError(t, err)
	end, err := s.Cursor(ctx, project, logstore, 1, store.CursorAt{Kind: store.CursorEnd})
	require.NoError(t, err)
	require.Equal(t, end-1, c)
	c0, err := s.Cursor(ctx, project, logstore, 1, store.CursorAt{Kind: store.CursorTime, Time: start.Add(-time.Hour)})
	require.NoError(t, err)
	require.Zero(t, c0)
	at, err := s.CursorTime(ctx, project, logstore, 1, end-1)
	require.NoError(t, err)
	require.False(t, at.Before(mid), "receive time %v of the last group is before %v", at, mid)

	// An end cursor, and cursors outside the shard.
	res, err := s.Pull(ctx, project, logstore, 0, store.PullRequest{Cursor: 2, EndCursor: 5, MaxGroups: 100, MaxBytes: 1 << 20})
	require.NoError(t, err)
	require.Equal(t, 3, res.Groups)
	require.Equal(t, int64(5), res.Next)
	res, err = s.Pull(ctx, project, logstore, 1, store.PullRequest{Cursor: end, EndCursor: -1, MaxGroups: 100, MaxBytes: 1 << 20})
	require.NoError(t, err)
	require.Zero(t, res.Groups)
	require.Equal(t, end, res.Next)
	_, err = s.Pull(ctx, project, logstore, 1, store.PullRequest{Cursor: end + 1, EndCursor: -1, MaxGroups: 100, MaxBytes: 1 << 20})
	require.ErrorIs(t, err, store.ErrInvalidCursor)
	_, err = s.Pull(ctx, project, logstore, 1, store.PullRequest{Cursor: -1, EndCursor: -1, MaxGroups: 100, MaxBytes: 1 << 20})
	require.ErrorIs(t, err, store.ErrInvalidCursor)
	_, err = s.Pull(ctx, project, "missing", 0, store.PullRequest{MaxGroups: 1, MaxBytes: 1})
	require.ErrorIs(t, err, store.ErrLogstoreNotFound)

	// Logs whose time is past the TTL are not searchable but were
	// received: the shard keeps them.
	old := numbered(7, 0, 2, time.Now().Add(-100*24*time.Hour))
	require.NoError(t, s.WriteShard(ctx, project, logstore, 0, []protocol.LogGroup{old}, time.Now()))
	end0, err := s.Cursor(ctx, project, logstore, 0, store.CursorAt{Kind: store.CursorEnd})
	require.NoError(t, err)
	got := pullAll(t, s, logstore, 0, end0-1, 1)
	require.Equal(t, []protocol.LogGroup{old}, got)

	// Write is WriteShard to shard 0.
	require.NoError(t, s.Write(ctx, project, logstore, []protocol.LogGroup{numbered(8, 0, 1, time.Now())}, time.Now()))
	got = pullAll(t, s, logstore, 0, end0, 10)
	require.Len(t, got, 1)
	require.Equal(t, "8", got[0].Logs[0].Contents[0].Value)

	// Dropped and created again: empty shards.
	require.NoError(t, s.DropLogstore(ctx, project, logstore))
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: project, Logstore: logstore}))
	end0, err = s.Cursor(ctx, project, logstore, 0, store.CursorAt{Kind: store.CursorEnd})
	require.NoError(t, err)
	require.Zero(t, end0)
}
