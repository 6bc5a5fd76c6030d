package duckdb

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/wal"
)

const (
	shardChildEnv      = "SLUICE_DUCKDB_SHARD_CHILD"
	shardChildStartEnv = "SLUICE_DUCKDB_SHARD_CHILD_START"
	shardChildSyncEnv  = "SLUICE_DUCKDB_SHARD_CHILD_SYNC"
	shardChildLogs     = 5 // logs per group
)

// shardChild writes groups numbered from $START, group i to shard i%2,
// with loads every few writes and small WAL segments (so recovery meets
// loaded positions, removed WAL segments and rolled shard files), and
// prints "acked i" after each write returns, until killed.
func shardChild() int {
	start, _ := strconv.Atoi(os.Getenv(shardChildStartEnv))
	var every time.Duration
	if v := os.Getenv(shardChildSyncEnv); v != "" {
		every, _ = time.ParseDuration(v)
	}
	s, err := Open(Config{DataDir: os.Getenv(shardChildEnv), Threads: 1, LoadRows: 40, FlushInterval: 20 * time.Millisecond,
		SyncInterval: every, walSegmentBytes: 16 << 10}, Settings{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	if err := s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := start; ; i++ {
		if err := s.WriteShard(ctx, "p", "l", i%2, []protocol.LogGroup{numberedGroup(i)}, time.Now()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("acked %d\n", i)
	}
}

func numberedGroup(i int) protocol.LogGroup {
	g := protocol.LogGroup{Topic: "n", LogTags: []protocol.LogTag{{Key: "__pack_id__", Value: fmt.Sprintf("AB-%X", i)}}}
	for j := range shardChildLogs {
		g.Logs = append(g.Logs, protocol.Log{Time: uint32(time.Now().Unix()), Contents: []protocol.LogContent{
			{Key: "group", Value: strconv.Itoa(i)}, {Key: "line", Value: strconv.Itoa(j)}, {Key: "pad", Value: fmt.Sprintf("%0200d", i)}}})
	}
	return g
}

// TestShardsSurviveKill9 SIGKILLs a writing process at random moments
// (seed logged) and checks after each restart that every shard holds
// every acknowledged group exactly once, in write order, that a cursor
// still reads the group it read before the kill, and that queries count
// the same logs the shards hold.
func TestShardsSurviveKill9(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SLUICE_TEST_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (SLUICE_TEST_SEED reruns it)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	seen := map[[2]int64]int{} // (shard, cursor) -> group number, from earlier rounds
	next := 0
	for round, sync := range []string{"", "", "1h", ""} {
		killAfter := 5 + rng.IntN(60)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), shardChildEnv+"="+dir, shardChildStartEnv+"="+strconv.Itoa(next), shardChildSyncEnv+"="+sync)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		sc := bufio.NewScanner(out)
		acked := -1
		for n := 0; n < killAfter && sc.Scan(); n++ {
			_, err := fmt.Sscanf(sc.Text(), "acked %d", &acked)
			require.NoError(t, err, "child said %q", sc.Text())
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		require.GreaterOrEqual(t, acked, next, "round %d: the child acknowledged nothing", round)

		s, err := Open(Config{DataDir: dir, Threads: 1}, Settings{})
		require.NoError(t, err)
		ctx := context.Background()
		maxSeen, groups := -1, 0
		for sh := range 2 {
			begin, err := s.Cursor(ctx, "p", "l", sh, store.CursorAt{Kind: store.CursorBegin})
			require.NoError(t, err)
			require.Zero(t, begin)
			res, err := s.Pull(ctx, "p", "l", sh, store.PullRequest{Cursor: 0, EndCursor: -1, MaxGroups: 1 << 20, MaxBytes: 1 << 30})
			require.NoError(t, err)
			var gl protocol.LogGroupList
			require.NoError(t, gl.Unmarshal(res.Data))
			for c, g := range gl.LogGroups {
				n, err := strconv.Atoi(g.Logs[0].Contents[0].Value)
				require.NoError(t, err)
				require.Equal(t, sh+2*c, n, "round %d shard %d cursor %d: groups in order, none missing or twice", round, sh, c)
				require.Equal(t, numberedGroup(n).Logs[0].Contents, g.Logs[0].Contents)
				require.Len(t, g.Logs, shardChildLogs)
				if was, ok := seen[[2]int64{int64(sh), int64(c)}]; ok {
					require.Equal(t, was, n, "round %d shard %d: cursor %d read another group before the restart", round, sh, c)
				}
				seen[[2]int64{int64(sh), int64(c)}] = n
				maxSeen = max(maxSeen, n)
				groups++
			}
		}
		require.GreaterOrEqual(t, maxSeen, acked, "round %d: an acknowledged group is missing", round)
		require.Equal(t, maxSeen+1, groups)
		require.Equal(t, groups*shardChildLogs, countAll(t, s), "round %d: queries and shards disagree", round)
		require.NoError(t, s.Close())
		next = maxSeen + 1
	}
}

// A WAL record of an earlier version (no shard) left unloaded by an
// upgrade is replayed into shard 0 as well as into segments.
func TestLegacyWALRecordReplaysIntoShardZero(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{DataDir: dir})
	require.NoError(t, s.EnsureLogstore(context.Background(), store.LogstoreSpec{Project: "p", Logstore: "l"}))
	s.mu.RLock()
	id := s.logstores[lsKey{"p", "l"}].id
	s.mu.RUnlock()
	require.NoError(t, s.Close())

	g := numberedGroup(0)
	payload := binary.AppendUvarint(nil, uint64(id))
	payload = binary.AppendVarint(payload, time.Now().UnixNano())
	payload = protocol.AppendLogGroupListEntry(payload, &g)
	rec := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	rec = binary.LittleEndian.AppendUint32(rec, crc32.Checksum(payload, wal.CRCTable))
	rec = append(rec, payload...)
	segs, err := wal.Segments(filepath.Join(dir, "wal"))
	require.NoError(t, err)
	f, err := os.OpenFile(segs[len(segs)-1].Path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write(rec)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	s = open(t, Config{DataDir: dir})
	require.Equal(t, shardChildLogs, countAll(t, s))
	res, err := s.Pull(context.Background(), "p", "l", 0, store.PullRequest{EndCursor: -1, MaxGroups: 10, MaxBytes: 1 << 20})
	require.NoError(t, err)
	var gl protocol.LogGroupList
	require.NoError(t, gl.Unmarshal(res.Data))
	require.Equal(t, []protocol.LogGroup{g}, gl.LogGroups)
}
