package duckdb

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/store"
)

func countAll(t *testing.T, s *Store) int {
	t.Helper()
	res, err := s.Search(context.Background(), "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: "* | select count(*) as c"})
	require.NoError(t, err)
	n, err := strconv.Atoi(res.Rows[0][0].Value)
	require.NoError(t, err)
	return n
}

const walChildEnv = "SLUICE_DUCKDB_WAL_CHILD"

// walChild writes 3 groups with a loader that does not run on its own,
// says so, and waits to be killed: the writes are in the WAL only.
func walChild() int {
	s, err := Open(Config{DataDir: os.Getenv(walChildEnv), FlushInterval: time.Hour, Threads: 1}, Settings{})
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
// of a write, never acknowledged) is ignored.
func TestWALReplayAfterKill(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), walChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "acked\n", line)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	segs, err := listSegments(filepath.Join(dir, "wal"))
	require.NoError(t, err)
	require.Len(t, segs, 1)
	f, err := os.OpenFile(segs[0].path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	g := protocoltest.NginxLogGroup(16 << 10)
	rec := appendWALRecord(nil, 1, 0, []protocol.LogGroup{*g})
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
}
