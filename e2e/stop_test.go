package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/e2e/e2etest"
	"github.com/sluicelog/sluice/mocklog"
)

// TestStopDelay: after SIGTERM the agent keeps collecting for --stop-delay
// (the app's last lines as it shuts down get out), then stops within
// --shutdown-timeout, saving its positions: a restart repeats nothing.
func TestStopDelay(t *testing.T) {
	root := t.TempDir()
	confDir, logDir := filepath.Join(root, "conf"), filepath.Join(root, "logs")
	require.NoError(t, os.MkdirAll(confDir, 0o755))
	require.NoError(t, os.MkdirAll(logDir, 0o755))
	out := filepath.Join(root, "out.jsonl")
	writeConfig(t, confDir, "app.json", fileConfig("app", logDir, "*.log", nil))
	const stopDelay, shutdownTimeout = 2 * time.Second, 5 * time.Second
	opts := agentOpts{configDir: confDir, output: out, checkpoint: filepath.Join(root, "cp.json"),
		args: []string{"--stop-delay", stopDelay.String(), "--shutdown-timeout", shutdownTimeout.String()}}
	a := startAgent(t, opts)
	a.WaitHealthy(15 * time.Second)

	gen := e2etest.StartGenerator(t, mocklog.Options{Path: filepath.Join(logDir, "app.log"), LogsPerSec: 5000})
	require.Eventually(t, func() bool { return e2etest.TrackOutput(t, out).Count() > 1000 }, 10*time.Second, 50*time.Millisecond)
	a.Signal(syscall.SIGTERM)
	termAt := time.Now()
	// The app keeps writing for most of the stop delay.
	time.Sleep(stopDelay - 500*time.Millisecond)
	last := gen.Stop()
	exited := a.Exited(stopDelay + shutdownTimeout + 2*time.Second)
	took := time.Since(termAt)
	require.True(t, exited, "agent did not exit within stop delay + shutdown timeout\n%s", agentLog(root))
	require.NoError(t, a.Err(), "a clean stop exits 0\n%s", agentLog(root))
	require.GreaterOrEqual(t, took, stopDelay, "the agent stopped before its stop delay")
	require.Less(t, took, stopDelay+shutdownTimeout)

	tr := e2etest.TrackOutput(t, out)
	require.Empty(t, tr.Missing(1, last), "lines written during the stop delay were not collected: %s", tr.Summary(1, last))
	require.Zero(t, tr.Duplicates())

	// Positions were saved on the way out: a restart repeats nothing.
	b := startAgent(t, opts)
	b.WaitHealthy(15 * time.Second)
	time.Sleep(time.Second) // several file polls
	b.Signal(syscall.SIGTERM)
	b.Signal(syscall.SIGTERM) // a second signal skips the delay
	exited = b.Exited(3 * time.Second)
	require.True(t, exited, "a second signal must stop the agent at once")
	tr = e2etest.TrackOutput(t, out)
	require.Zero(t, tr.Duplicates(), "restart after a clean stop re-read lines: %s", tr.Summary(1, last))
}
