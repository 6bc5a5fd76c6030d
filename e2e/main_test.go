// Package e2e runs the real sluice-agent binary against real files written by
// mocklog and checks what a user would notice: every line delivered across
// restarts, crashes, rotations and config changes, clear status for broken
// configs, and a bounded stop. The binaries are built once per test run.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	agentrt "github.com/sluicelog/sluice/agent/runtime"
	"github.com/sluicelog/sluice/e2e/e2etest"
	"github.com/sluicelog/sluice/mocklog"
)

// agentBin is the sluice-agent binary built by TestMain.
var agentBin string

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, map[string]*string{"sluice-agent": &agentBin}))
}

// agent is one run of the sluice-agent binary.
type agent struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
	done   chan struct{}
	err    error
}

type agentOpts struct {
	configDir  string
	output     string // file path
	checkpoint string
	args       []string // extra flags
	env        []string
	// wrap runs the agent through another program (unshare + mount), which
	// must exec it: argv is wrap + [agentBin] + flags.
	wrap []string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// lockedBuffer collects the agent's log for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func startAgent(t *testing.T, o agentOpts) *agent {
	t.Helper()
	addr := freeAddr(t)
	args := []string{"run", "--config-dir", o.configDir, "--output", "file:" + o.output,
		"--http-listen", addr, "--config-poll", "200ms", "--file-poll", "100ms", "--log-level", "info",
		"--stop-delay", "0s", "--shutdown-timeout", "10s"}
	args = append(args, o.args...)
	argv := append(append(append([]string{}, o.wrap...), agentBin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "check_point_filename="+o.checkpoint, "check_point_dump_interval=1",
		"buffer_file_path="+filepath.Join(filepath.Dir(o.checkpoint), "buffer"))
	cmd.Env = append(cmd.Env, o.env...)
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(o.checkpoint), "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	cmd.Stderr = logf
	require.NoError(t, cmd.Start())
	a := &agent{t: t, cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() {
		a.err = cmd.Wait()
		_ = logf.Close()
		close(a.done)
	}()
	t.Cleanup(func() {
		if a.running() {
			_ = cmd.Process.Kill()
			<-a.done
		}
	})
	return a
}

func (a *agent) running() bool {
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

func (a *agent) kill() {
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
}

func (a *agent) signal(sig os.Signal) { require.NoError(a.t, a.cmd.Process.Signal(sig)) }

// wait waits for the process to exit and returns how long that took.
func (a *agent) wait(timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	select {
	case <-a.done:
		return time.Since(start), true
	case <-time.After(timeout):
		return time.Since(start), false
	}
}

func (a *agent) status() (agentrt.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return agentrt.FetchStatus(ctx, a.addr)
}

func (a *agent) waitHealthy() {
	a.t.Helper()
	require.Eventually(a.t, func() bool {
		st, err := a.status()
		return err == nil && st.Healthy
	}, 15*time.Second, 50*time.Millisecond, "agent never became healthy")
}

// configStatus returns the status of one config ("" state when unknown).
func (a *agent) configStatus(name string) agentrt.ConfigStatus {
	st, err := a.status()
	if err != nil {
		return agentrt.ConfigStatus{}
	}
	for _, c := range st.Configs {
		if c.Name == name {
			return c
		}
	}
	return agentrt.ConfigStatus{}
}

// fileConfig is a Logtail collection config for the files matching pattern
// in dir, whole lines into "content" (the SDK's simple mode).
func fileConfig(name, dir, pattern string, extra map[string]any) []byte {
	detail := map[string]any{
		"logType": "common_reg_log", "logPath": dir, "filePattern": pattern,
		"regex": "(.*)", "key": []string{"content"}, "logBeginRegex": ".*",
	}
	for k, v := range extra {
		detail[k] = v
	}
	b, err := json.Marshal(map[string]any{
		"configName": name, "inputType": "file", "inputDetail": detail,
		"outputType":   "LogService",
		"outputDetail": map[string]any{"projectName": "e2e", "logstoreName": name},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// writeConfig replaces a config file atomically (as kubelet updates a
// ConfigMap volume), so the agent never reads half a file.
func writeConfig(t *testing.T, dir, file string, data []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+file+".tmp")
	require.NoError(t, os.WriteFile(tmp, data, 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, file)))
}

// outputLine is what the tests look at in one JSON line of the file output.
type outputLine struct {
	Topic   string `json:"__topic__"`
	Path    string `json:"__tag__:__path__"`
	Content string `json:"content"`
}

// readOutput decodes the file output. A line torn by SIGKILL in the middle of
// a write is followed by the next run's first line on the same line: both
// are split apart and the torn one is skipped.
func readOutput(t *testing.T, path string) []outputLine {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []outputLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		for _, part := range splitRecords(sc.Bytes()) {
			var l outputLine
			if json.Unmarshal(part, &l) == nil {
				out = append(out, l)
			}
		}
	}
	require.NoError(t, sc.Err())
	return out
}

var recordStart = []byte(`{"__time__":`)

func splitRecords(line []byte) [][]byte {
	var parts [][]byte
	for {
		i := bytes.Index(line[1:], recordStart)
		if i < 0 {
			return append(parts, line)
		}
		parts = append(parts, line[:i+1])
		line = line[i+1:]
	}
}

// trackOutput feeds every sequence number in the output to a fresh tracker,
// with the lines that carry no number counted separately.
func trackOutput(t *testing.T, path string) *mocklog.SeqTracker {
	t.Helper()
	tr := &mocklog.SeqTracker{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return tr
	}
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		for _, part := range splitRecords(sc.Bytes()) {
			tr.AddLine(part)
		}
	}
	require.NoError(t, sc.Err())
	return tr
}

// generator runs mocklog in the background.
type generator struct {
	g      *mocklog.Generator
	cancel context.CancelFunc
	done   chan error
}

func startGenerator(t *testing.T, opts mocklog.Options) *generator {
	t.Helper()
	if opts.LogType == "" {
		opts.LogType = mocklog.LogTypeNginx
	}
	if opts.FirstSeq == 0 {
		opts.FirstSeq = 1
	}
	g, err := mocklog.New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	gen := &generator{g: g, cancel: cancel, done: make(chan error, 1)}
	go func() { gen.done <- g.Run(ctx) }()
	t.Cleanup(func() { gen.stop() })
	return gen
}

// stop ends generation and returns the last sequence number written.
func (g *generator) stop() uint64 {
	g.cancel()
	<-g.done
	g.done <- nil // later stops return at once
	return g.g.Stats().NextSeq - 1
}

func agentLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
	s := string(b)
	if len(s) > 8000 {
		s = "…" + s[len(s)-8000:]
	}
	return strings.TrimSpace(s)
}

// agentWarnings returns the WARN and ERROR lines of the agent log.
func agentWarnings(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			keep = append(keep, l)
		}
	}
	if len(keep) > 40 {
		keep = append(keep[:40], fmt.Sprintf("… %d more", len(keep)-40))
	}
	return strings.Join(keep, "\n")
}

// testDir is t.TempDir, or with SLUICE_E2E_KEEP=1 a directory that is kept
// (and logged) for looking at the agent log and the output after a failure.
func testDir(t *testing.T) string {
	t.Helper()
	if os.Getenv("SLUICE_E2E_KEEP") == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	require.NoError(t, err)
	t.Logf("keeping %s", dir)
	return dir
}
