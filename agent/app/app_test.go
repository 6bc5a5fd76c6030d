package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/logconfig"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testAgent is a config directory collecting dir/*.log into a JSON-lines
// file, with the agent's state in a temporary directory.
type testAgent struct {
	dir, logs, out string
	cfg            Config
}

func newTestAgent(t *testing.T) *testAgent {
	t.Helper()
	dir := t.TempDir()
	// After a second signal Run returns without waiting for the inputs
	// (the process exits then); here they may still write a checkpoint
	// for a moment, which made TempDir's cleanup fail ("directory not
	// empty"). Runs before TempDir's cleanup.
	t.Cleanup(func() {
		for deadline := time.Now().Add(5 * time.Second); os.RemoveAll(dir) != nil && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
	})
	ta := &testAgent{dir: dir, logs: filepath.Join(dir, "logs"), out: filepath.Join(dir, "out.jsonl")}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "configs"), 0o755))
	require.NoError(t, os.MkdirAll(ta.logs, 0o755))
	conf, err := json.Marshal(map[string]any{
		"configName": "app", "inputType": "file",
		"inputDetail": map[string]any{
			"logType": "common_reg_log", "logPath": ta.logs, "filePattern": "*.log",
			"regex": "(.*)", "key": []string{"content"}, "logBeginRegex": ".*",
		},
		"outputDetail": map[string]any{"projectName": "p", "logstoreName": "app"},
	})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "configs", "app.json"), conf, 0o644))
	inst := logconfig.NewDefaultInstance()
	inst.CheckPointFilename = filepath.Join(dir, "checkpoint")
	ta.cfg = Config{
		ConfigDir: filepath.Join(dir, "configs"), ConfigPoll: 50 * time.Millisecond,
		Output: "file:" + ta.out, Instance: inst, CheckpointInterval: 100 * time.Millisecond,
		FilePoll: 20 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
	}
	return ta
}

func (ta *testAgent) appendLines(t *testing.T, from, to int) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(ta.logs, "app.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	defer f.Close()
	for i := from; i < to; i++ {
		_, err := fmt.Fprintf(f, "line %d\n", i)
		require.NoError(t, err)
	}
}

// delivered counts the records in the output file.
func (ta *testAgent) delivered() int {
	b, _ := os.ReadFile(ta.out)
	return bytes.Count(b, []byte("\n"))
}

func TestRunCollectsUntilSignalAndDeliversDuringStopDelay(t *testing.T) {
	ta := newTestAgent(t)
	ta.cfg.StopDelay = 300 * time.Millisecond
	ta.appendLines(t, 0, 3)
	a, err := New(ta.cfg, Settings{})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	sigs := make(chan os.Signal, 2)
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background(), sigs) }()
	require.Eventually(t, func() bool { return ta.delivered() == 3 }, 10*time.Second, 10*time.Millisecond)

	// Lines the app writes right after the stop signal still get out: the
	// agent keeps collecting during the stop delay.
	sigs <- syscall.SIGTERM
	ta.appendLines(t, 3, 5)
	require.NoError(t, <-done)
	require.Equal(t, 5, ta.delivered())
	cp, err := os.ReadFile(filepath.Join(ta.dir, "checkpoint"))
	require.NoError(t, err, "checkpoints are saved at the stop")
	require.Contains(t, string(cp), "app.log")
}

func TestSecondSignalSkipsStopDelay(t *testing.T) {
	ta := newTestAgent(t)
	ta.cfg.StopDelay = time.Hour
	a, err := New(ta.cfg, Settings{})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	sigs := make(chan os.Signal, 2)
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background(), sigs) }()
	sigs <- syscall.SIGTERM
	sigs <- syscall.SIGINT
	select {
	case err := <-done:
		// Inputs are stopped without waiting for them: said, not hidden.
		require.ErrorContains(t, err, "stopped before everything read was delivered (it is read again after restart)")
	case <-time.After(10 * time.Second):
		t.Fatal("a second signal did not cut the one-hour stop delay short")
	}
}

func TestStartReportsStatusPortInUseAndStopsWhatItStarted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	ta := newTestAgent(t)
	ta.cfg.HTTPListen = ln.Addr().String()
	a, err := New(ta.cfg, Settings{})
	require.NoError(t, err)
	err = a.Start(context.Background())
	require.ErrorContains(t, err, "status/metrics address "+ln.Addr().String()+" is in use")
	require.ErrorContains(t, err, "choose another with --http-listen ADDR (env SLUICE_HTTP_LISTEN)")
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	require.Error(t, a.Run(context.Background(), nil), "Run needs a started agent")
	require.Error(t, a.Start(context.Background()), "an agent starts once")
	// goleak (TestMain) checks that the output and checkpoint store
	// started before the failure were stopped.
}

func TestAdminAddrServesStatus(t *testing.T) {
	ta := newTestAgent(t)
	ta.cfg.HTTPListen = "127.0.0.1:0"
	a, err := New(ta.cfg, Settings{})
	require.NoError(t, err)
	require.Nil(t, a.AdminAddr())
	require.NoError(t, a.Start(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, nil) }()
	require.Eventually(t, func() bool {
		st, err := FetchStatus(context.Background(), a.AdminAddr().String())
		return err == nil && st.Healthy && len(st.Configs) == 1 && st.Configs[0].Name == "app"
	}, 10*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

func TestNewRejectsConfigsThatCannotWork(t *testing.T) {
	f := func(mutate func(*Config), want string) {
		t.Helper()
		ta := newTestAgent(t)
		mutate(&ta.cfg)
		_, err := New(ta.cfg, Settings{})
		require.ErrorContains(t, err, want)
	}
	f(func(c *Config) { c.Output = "kafka:broker" }, `--output "kafka:broker": unknown kind "kafka": use one of stdout, file, null, sls`)
	f(func(c *Config) { c.Output = "file" }, "--output file: give the file to append JSON lines to")
	f(func(c *Config) { c.ConfigDir = "" }, "--config-dir is required")
	f(func(c *Config) { c.StopDelay = -time.Second }, "--stop-delay must be ≥ 0")
}
