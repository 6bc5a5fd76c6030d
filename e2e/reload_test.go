package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/supervisor"
	"github.com/sluicelog/sluice/e2e/e2etest"
	"github.com/sluicelog/sluice/mocklog"
)

// TestConfigHotReload drives one agent through the life of its config
// directory: a config is added, changed (it resumes from its saved
// positions: no line twice, none lost), another is broken by an edit (status
// says why, the previous version and the other config keep collecting), and
// one is deleted (its files are no longer read).
func TestConfigHotReload(t *testing.T) {
	root := t.TempDir()
	confDir := filepath.Join(root, "conf")
	dirA, dirB := filepath.Join(root, "a"), filepath.Join(root, "b")
	for _, d := range []string{confDir, dirA, dirB} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	out := filepath.Join(root, "out.jsonl")
	a := startAgent(t, agentOpts{configDir: confDir, output: out, checkpoint: filepath.Join(root, "cp.json")})
	a.WaitHealthy(15 * time.Second)

	const seqB = 10_000_000 // B's sequence numbers start here, A's at 1
	genA := e2etest.StartGenerator(t, mocklog.Options{Path: filepath.Join(dirA, "app.log"), LogsPerSec: 2000})
	genB := e2etest.StartGenerator(t, mocklog.Options{Path: filepath.Join(dirB, "app.log"), LogsPerSec: 500, FirstSeq: seqB})

	countWhere := func(keep func(outputLine) bool) int {
		n := 0
		for _, l := range readOutput(t, out) {
			if keep(l) {
				n++
			}
		}
		return n
	}
	fromA := func(l outputLine) bool { return filepath.Dir(l.Path) == dirA }
	fromB := func(l outputLine) bool { return filepath.Dir(l.Path) == dirB }
	grows := func(keep func(outputLine) bool, msg string) {
		t.Helper()
		n := countWhere(keep)
		require.Eventually(t, func() bool { return countWhere(keep) > n+100 }, 10*time.Second, 100*time.Millisecond, "%s\nagent log:\n%s", msg, agentLog(root))
	}

	// Add.
	writeConfig(t, confDir, "a.json", fileConfig("a", dirA, "*.log", nil))
	grows(fromA, "config a added but its file is not collected")
	require.Equal(t, supervisor.StateRunning, a.ConfigStatus("a").State)

	// Change: a new topic shows when the new version took over.
	writeConfig(t, confDir, "a.json", fileConfig("a", dirA, "*.log", map[string]any{"topicFormat": "customized://v2"}))
	grows(func(l outputLine) bool { return fromA(l) && l.Topic == "v2" }, "changed config a did not take over")

	// Add a second config, then break it.
	writeConfig(t, confDir, "b.json", fileConfig("b", dirB, "*.log", nil))
	grows(fromB, "config b added but its file is not collected")
	writeConfig(t, confDir, "b.json", fileConfig("b", dirB, "*.log", map[string]any{"regex": "(unclosed", "key": []string{"x"}}))
	require.Eventually(t, func() bool { return a.ConfigStatus("b").State == supervisor.StateFailed }, 10*time.Second, 50*time.Millisecond)
	st := a.ConfigStatus("b")
	require.Contains(t, st.Message, `inputDetail.regex: invalid regular expression "(unclosed": missing closing )`)
	require.Contains(t, st.Message, "previous version of this config keeps collecting")
	// The status command (the liveness probe) prints the failure and still
	// exits 0: the agent is healthy, one config is not.
	cli, err := exec.Command(agentBin, "status", "--addr", a.Addr).CombinedOutput()
	require.NoError(t, err, "sluice-agent status: %s", cli)
	require.Contains(t, string(cli), "failed   b")
	require.Contains(t, string(cli), "missing closing )")
	require.Contains(t, string(cli), "running  a")
	grows(fromA, "config a stopped collecting when b broke")
	grows(fromB, "the previous version of b stopped collecting when its edit broke")
	require.Equal(t, supervisor.StateRunning, a.ConfigStatus("a").State)

	// A's lines so far: every one exactly once across add and change.
	lastA := genA.Stop()
	require.Eventually(t, func() bool {
		tr := e2etest.TrackOutput(t, out)
		return tr.CountIn(1, lastA) == lastA
	}, 15*time.Second, 100*time.Millisecond, "config a lost lines across its change")
	trA := &mocklog.SeqTracker{}
	for _, l := range readOutput(t, out) {
		if fromA(l) {
			trA.AddLine([]byte(l.Content))
		}
	}
	require.Zero(t, trA.Duplicates(), "a config change must resume from saved positions: %s", trA.Summary(1, lastA))
	require.Empty(t, trA.Missing(1, lastA))

	// Delete: a's file is no longer read; b keeps going.
	require.NoError(t, os.Remove(filepath.Join(confDir, "a.json")))
	require.Eventually(t, func() bool { return a.ConfigStatus("a").Name == "" }, 10*time.Second, 50*time.Millisecond)
	nA := countWhere(fromA)
	genA2 := e2etest.StartGenerator(t, mocklog.Options{Path: filepath.Join(dirA, "app.log"), LogsPerSec: 2000, FirstSeq: 5_000_000})
	grows(fromB, "config b stopped collecting when a was deleted")
	genA2.Stop()
	time.Sleep(500 * time.Millisecond) // several file polls
	require.Equal(t, nA, countWhere(fromA), "a deleted config must not collect")
	genB.Stop()

	a.Signal(os.Interrupt)
	ok := a.Exited(30 * time.Second)
	require.True(t, ok, "agent did not stop")

	// No agent: the probe fails.
	cmd := exec.Command(agentBin, "status", "--addr", a.Addr, "--timeout", "1s")
	cli, err = cmd.CombinedOutput()
	require.Error(t, err, "%s", cli)
	require.Equal(t, 1, cmd.ProcessState.ExitCode())
}
