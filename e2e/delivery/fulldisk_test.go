package delivery

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/supervisor"
	"github.com/sluicelog/sluice/internal/testenv"
)

// requireTmpfsNamespace skips the test (fails it with SLUICE_REQUIRE_ALL=1)
// when a private mount namespace with a tmpfs cannot be made.
func requireTmpfsNamespace(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	probe := exec.Command("unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir)
	if out, err := probe.CombinedOutput(); err != nil {
		testenv.SkipOrFail(t, "needs a private mount namespace with a small tmpfs (root / CAP_SYS_ADMIN) to fill the agent's disk: %v: %s", err, out)
	}
}

// TestFullDiskBuffer: the agent's disk buffer lives on a small disk (an
// 8 MiB tmpfs, mounted in the agent's own mount namespace) and the server
// is killed while mocklog keeps writing, so the buffer fills the disk. The
// agent must then wait — reading pauses, nothing is dropped or failed in a
// loop, /status says the buffer cannot be written — and once the server is
// back every line must arrive without a restart. Repeated
// (SLUICE_E2E_FULL_DISK_ROUNDS, default 2) in one agent run.
//
// Groups are sent uncompressed and are larger than half a 1 MiB segment,
// so every segment holds one group and every fill lands on a segment
// roll-over: the case where delivered segments used to be kept forever
// (issue 11). The test looks into the agent's mount namespace
// (/proc/PID/root) when the disk is full and counts the rounds whose newest
// segment is empty (the fill came with a new segment); at least one must
// be.
func TestFullDiskBuffer(t *testing.T) {
	if testing.Short() {
		t.Skip("reliability test: ~1 minute")
	}
	requireTmpfsNamespace(t)
	rounds := envInt(t, "SLUICE_E2E_FULL_DISK_ROUNDS", 2)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	rate := 4500 + rng.IntN(1000)

	e := newEnv(t)
	srv := e.startServer()
	e.provision()
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(e.collectionConfig(cfgName, "apps", project, logstore), &cfg))
	cfg["outputDetail"].(map[string]any)["compressType"] = "none"
	cfgJSON, err := json.Marshal(cfg)
	require.NoError(t, err)
	bufRoot := filepath.Join(e.dir, "agent/state/buffer")
	require.NoError(t, os.MkdirAll(bufRoot, 0o755))
	ag := e.startAgent(agentOpts{
		configs: map[string][]byte{cfgName + ".json": cfgJSON},
		env:     []string{"buffer_file_size=1048576", "buffer_file_num=100"},
		wrap: []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
			"mount -t tmpfs -o size=8m tmpfs " + bufRoot + ` && exec "$0" "$@"`},
	})
	gen := e.startMocklog(mocklogOpts{service: "web", firstSeq: 1, total: 1 << 40, rate: rate, rotateBytes: "20MB"})
	e.waitCount(1, 30*time.Second, 0)

	metric := func(name string) float64 {
		v, err := ag.Metric(name)
		require.NoError(t, err)
		return v
	}
	atRollover := 0
	for round := range rounds {
		time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
		srv.Kill()
		require.Eventually(t, func() bool { return metric("sluice_buffer_write_failing_since_seconds") > 0 },
			60*time.Second, 200*time.Millisecond, "round %d: the buffer never filled the disk\n%s", round, e.tail("agent"))
		full := time.Now()
		if newestSegmentEmpty(t, filepath.Join(fmt.Sprintf("/proc/%d/root", ag.Cmd.Process.Pid), bufRoot, project, logstore)) {
			atRollover++
		}
		// Held full for a while: reading must pause, not fail.
		time.Sleep(time.Duration(2000+rng.IntN(2000)) * time.Millisecond)
		st, err := ag.Status()
		require.NoError(t, err)
		require.True(t, st.Healthy)
		require.NotNil(t, st.Collection)
		var bs *supervisor.BufferStatus
		for i := range st.Collection.Buffers {
			if strings.HasSuffix(st.Collection.Buffers[i].Dir, "/"+project+"/"+logstore) {
				bs = &st.Collection.Buffers[i]
			}
		}
		require.NotNil(t, bs, "status lists the buffer: %+v", st.Collection.Buffers)
		require.Equal(t, supervisor.BufferUnwritable, bs.State, "status shows the full disk")
		lag := metric("sluice_file_lag_bytes")
		require.Positive(t, lag, "round %d: reading paused behind the full disk", round)
		t.Logf("round %d: disk full for %s: %.0f bytes buffered in %.0f files, %.0f bytes unread in the log file, %.0f failed writes",
			round, time.Since(full).Round(100*time.Millisecond), bs.PendingBytes, bs.Files, lag, bs.NoSpaceErrors)

		srv = e.startServer()
		back := time.Now()
		require.Eventually(t, func() bool {
			return metric("sluice_buffer_write_failing_since_seconds") == 0 && metric("sluice_buffer_pending_bytes") == 0
		}, 90*time.Second, 250*time.Millisecond, "round %d: the buffer did not drain after the server returned\n%s", round, e.tail("agent"))
		t.Logf("round %d: buffer drained %s after the server was back", round, time.Since(back).Round(100*time.Millisecond))
	}
	require.NoError(t, gen.Stop(10*time.Second))
	last := e.lastSeq("mocklog-web")
	e.waitCount(int64(last), 120*time.Second, 3*time.Second)
	tr, noSeq := e.seqs()
	require.Zero(t, noSeq)
	e.requireComplete(tr, 1, last)

	log := readAll(e.logPath("agent"))
	// Duplicates come only from requests in flight when the server was
	// killed: at most max_concurrency (8) groups of max_group_logs each.
	bound := uint64(rounds * 8 * 4096)
	t.Logf("%d rounds at %d lines/s: %d lines, all stored, %d duplicates (bound %d); %d fills at a segment roll-over; %.0f groups replayed",
		rounds, rate, last, tr.Duplicates(), bound, atRollover, metric("sluice_output_sls_replayed_groups_total"))
	require.Positive(t, atRollover, "no fill landed on a segment roll-over")
	require.Contains(t, log, `level=ERROR msg="disk buffer cannot be written`, "the full disk is logged")
	require.LessOrEqual(t, tr.Duplicates(), bound)
	require.NotContains(t, log, "batch not delivered", "batches failed (and were read again) instead of waiting")
	require.Zero(t, metric("sluice_buffer_corrupt_bytes_total"))
	require.NoError(t, ag.Stop(30*time.Second), e.tail("agent"))
	require.NoError(t, srv.Stop(30*time.Second), e.tail("server"))
}

// newestSegmentEmpty reports whether the newest segment file in dir is
// empty.
func newestSegmentEmpty(t *testing.T, dir string) bool {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	require.NotEmpty(t, segs, "segments in %s", dir)
	slices.Sort(segs)
	fi, err := os.Stat(segs[len(segs)-1])
	require.NoError(t, err)
	return fi.Size() == 0
}
