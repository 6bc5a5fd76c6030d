package duckdb

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/wal"
)

func countAll(t *testing.T, s *Store) int {
	t.Helper()
	res, err := s.Search(context.Background(), "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: "* | select count(*) as c"})
	require.NoError(t, err)
	n, err := strconv.Atoi(res.Rows[0][0].Value)
	require.NoError(t, err)
	return n
}

const (
	walChildEnv     = "SLUICE_DUCKDB_WAL_CHILD"
	walChildSyncEnv = "SLUICE_DUCKDB_WAL_CHILD_SYNC"
)

// walChild writes 3 groups with a loader that does not run on its own,
// says so, and waits to be killed: the writes are in the WAL only.
// With walChildSyncEnv set, it runs with that SyncInterval.
func walChild() int {
	var every time.Duration
	if v := os.Getenv(walChildSyncEnv); v != "" {
		var err error
		if every, err = time.ParseDuration(v); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	s, err := Open(Config{DataDir: os.Getenv(walChildEnv), FlushInterval: time.Hour, SyncInterval: every, Threads: 1}, Settings{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	if err := s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	g := protocoltest.NginxLogGroup(16 << 10)
	for range 3 {
		if err := s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, time.Now()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Println("acked")
	select {}
}

// Writes acknowledged but not loaded when the process is killed are
// loaded from the WAL on Open, exactly once (a second restart does not
// load them again); a torn record at the WAL's end (a crash in the middle
// of a write, never acknowledged) is ignored. With async durability
// (SyncInterval) the child's WAL is never fsynced before the kill: an
// acknowledged write is in the file, which is what survives a process
// crash.
func TestWALReplayAfterKill(t *testing.T) {
	for _, tc := range []struct{ name, sync string }{{"request", ""}, {"async", "1h"}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), walChildEnv+"="+dir, walChildSyncEnv+"="+tc.sync)
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			cmd.Stderr = os.Stderr
			require.NoError(t, cmd.Start())
			line, err := bufio.NewReader(out).ReadString('\n')
			require.NoError(t, err)
			require.Equal(t, "acked\n", line)
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			_ = cmd.Wait()

			segs, err := wal.Segments(filepath.Join(dir, "wal"))
			require.NoError(t, err)
			require.Len(t, segs, 1)
			f, err := os.OpenFile(segs[0].Path, os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			g := protocoltest.NginxLogGroup(16 << 10)
			rec := wal.AppendRecord(nil, 1, 0, 0, []protocol.LogGroup{*g})
			_, err = f.Write(rec[:len(rec)/2])
			require.NoError(t, err)
			require.NoError(t, f.Close())

			s, err := Open(Config{DataDir: dir, Threads: 1}, Settings{})
			require.NoError(t, err)
			require.Equal(t, 3*len(g.Logs), countAll(t, s))
			require.NoError(t, s.Write(context.Background(), "p", "l", []protocol.LogGroup{*g}, time.Now()))
			require.NoError(t, s.Close())

			s = open(t, Config{DataDir: dir})
			require.Equal(t, 4*len(g.Logs), countAll(t, s), "replayed once, plus the write after the restart")
		})
	}
}

// With async durability a write is acknowledged before any fsync, and
// the WAL is fsynced within SyncInterval, not per write; with request
// durability every acknowledged write has been fsynced.
func TestSyncInterval(t *testing.T) {
	g := protocoltest.NginxLogGroup(4 << 10)
	syncs := func(s *Store) uint64 {
		var m dto.Metric
		require.NoError(t, s.m.walSyncSeconds.Write(&m))
		return m.GetHistogram().GetSampleCount()
	}
	write := func(s *Store, n int) {
		for range n {
			require.NoError(t, s.Write(context.Background(), "p", "l", []protocol.LogGroup{*g}, time.Now()))
		}
	}

	s := open(t, Config{FlushInterval: time.Hour})
	require.NoError(t, s.EnsureLogstore(context.Background(), store.LogstoreSpec{Project: "p", Logstore: "l"}))
	write(s, 10)
	require.EqualValues(t, 10, syncs(s), "request durability: one fsync per sequential write")

	s = open(t, Config{FlushInterval: time.Hour, SyncInterval: 100 * time.Millisecond})
	require.NoError(t, s.EnsureLogstore(context.Background(), store.LogstoreSpec{Project: "p", Logstore: "l"}))
	write(s, 10)
	require.LessOrEqual(t, syncs(s), uint64(2), "async: writes are acknowledged without an fsync each")
	require.Eventually(t, func() bool { return syncs(s) >= 1 }, 5*time.Second, 10*time.Millisecond, "async: the WAL is fsynced within SyncInterval")
	before := syncs(s)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, before, syncs(s), "nothing written since: no more fsyncs")
	require.Equal(t, 10*len(g.Logs), countAll(t, s))

	_, err := Open(Config{DataDir: t.TempDir(), SyncInterval: -time.Second}, Settings{})
	require.ErrorContains(t, err, "SyncInterval")
}

// Many concurrent writes over many small WAL segments, with both
// durabilities: every write is stored once after a restart, WAL segments
// below the loaded position are removed, and (async) the syncer closes the
// segments the flusher moved on from: no file descriptors are left open.
func TestWALSegmentRotation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		every time.Duration
	}{{"request", 0}, {"async", 20 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fds0 := openFDs(t)
			cfg := Config{DataDir: dir, SyncInterval: tc.every, FlushInterval: time.Hour, walSegmentBytes: 32 << 10}
			s := open(t, cfg)
			require.NoError(t, s.EnsureLogstore(context.Background(), store.LogstoreSpec{Project: "p", Logstore: "l"}))
			g := protocoltest.NginxLogGroup(4 << 10)
			const writers, each = 8, 40
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for range each {
						if err := s.Write(context.Background(), "p", "l", []protocol.LogGroup{*g}, time.Now()); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			segs, err := wal.Segments(filepath.Join(dir, "wal"))
			require.NoError(t, err)
			require.Greater(t, len(segs), 20, "the writes span many WAL segments")
			require.NoError(t, s.Close())

			s = open(t, Config{DataDir: dir, walSegmentBytes: 32 << 10})
			require.Equal(t, writers*each*len(g.Logs), countAll(t, s), "every write stored once")
			segs, err = wal.Segments(filepath.Join(dir, "wal"))
			require.NoError(t, err)
			require.LessOrEqual(t, len(segs), 2, "loaded WAL segments are removed")
			require.NoError(t, s.Close())
			require.LessOrEqual(t, openFDs(t), fds0+2, "WAL segments are closed")
		})
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}
