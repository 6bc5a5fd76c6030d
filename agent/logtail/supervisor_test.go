package logtail

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The supervisor's children here are this test binary in the role of the
// agent (fakeAgent): the supervision logic is under test, not the agent,
// which the seeds tests (deploy/test) run under the real supervisor.
const envFakeAgent = "LOGTAIL_TEST_FAKE_AGENT"

func TestMain(m *testing.M) {
	if mode := os.Getenv(envFakeAgent); mode != "" {
		os.Exit(fakeAgent(mode, os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// fakeAgent serves /healthz on --http-listen until SIGTERM, recording its
// starts and stops in $LOGTAIL_TEST_EVENTS.
func fakeAgent(mode string, args []string) int {
	record := func(ev string) {
		f, err := os.OpenFile(os.Getenv("LOGTAIL_TEST_EVENTS"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s %d %s\n", ev, time.Now().UnixNano(), strings.Join(args, " "))
			_ = f.Close()
		}
	}
	events, _ := os.ReadFile(os.Getenv("LOGTAIL_TEST_EVENTS"))
	record("start")
	switch {
	case mode == "usage":
		return 2
	case mode == "crash-once" && !bytes.Contains(events, []byte("start")):
		return 3
	}
	var listen string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--http-listen="); ok {
			listen = v
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return 1
	}
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok", r.URL.Path) }))
	}()
	<-sigs
	record("stop")
	return 0
}

type supervised struct {
	addr   string
	events string
	sigs   chan os.Signal
	done   chan struct{} // closed when Supervise returned code
	code   int
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startSupervised(t *testing.T, mode string, delay time.Duration) *supervised {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	s := &supervised{addr: addr, events: filepath.Join(t.TempDir(), "events"), sigs: make(chan os.Signal, 4), done: make(chan struct{}), stderr: &syncBuffer{}}
	cfg := SupervisorConfig{
		Exe: os.Args[0], Args: []string{"--output=null"},
		Env:    append(os.Environ(), envFakeAgent+"="+mode, "LOGTAIL_TEST_EVENTS="+s.events),
		Listen: addr, StopDelay: delay, Signals: s.sigs, Stdout: s.stderr, Stderr: s.stderr,
		MaxBackoff: time.Second, Logger: slog.New(slog.NewTextHandler(s.stderr, nil)),
	}
	go func() { s.code = Supervise(context.Background(), cfg); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.sigs <- syscall.SIGTERM
			s.sigs <- syscall.SIGTERM
			<-s.done
		}
	})
	return s
}

func (s *supervised) eventLines() []string {
	b, _ := os.ReadFile(s.events)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func (s *supervised) waitHealthy(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return checkHealthy(s.addr) == nil }, 20*time.Second, 50*time.Millisecond, "never healthy: %s", s.stderr)
}

func initd(t *testing.T, addr string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := runInitd(append(args, "--addr="+addr), func(string) string { return "" }, &out, &out)
	return code, out.String()
}

// SIGTERM: the child keeps running for the stop delay, then stops; the
// container's exit code is the child's.
func TestSupervisorStopDelay(t *testing.T) {
	s := startSupervised(t, "serve", 700*time.Millisecond)
	s.waitHealthy(t)
	sent := time.Now()
	s.sigs <- syscall.SIGTERM
	select {
	case <-s.done:
		assert.Equal(t, 0, s.code)
	case <-time.After(20 * time.Second):
		t.Fatal("supervisor did not stop")
	}
	ev := s.eventLines()
	require.Len(t, ev, 2, ev)
	var stoppedAt int64
	_, err := fmt.Sscanf(ev[1], "stop %d", &stoppedAt)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Unix(0, stoppedAt).Sub(sent), 700*time.Millisecond, "stopped before the delay")
	// The child runs with the supervisor's status port and no delay of its own.
	assert.Contains(t, ev[0], "run --output=null --http-listen=127.0.0.1:")
	assert.Contains(t, ev[0], "--stop-delay=0s")
}

// A child that dies is started again; status is proxied to the new one.
func TestSupervisorRestartsCrashedAgent(t *testing.T) {
	s := startSupervised(t, "crash-once", 0)
	s.waitHealthy(t)
	ev := s.eventLines()
	assert.Len(t, ev, 2, "one crashed start, one running: %v", ev)
	assert.Contains(t, s.stderr.String(), "sluice-agent exited; restarting")
}

// Bad flags (exit 2) are not retried forever: the container ends with 2.
func TestSupervisorUsageErrorEnds(t *testing.T) {
	s := startSupervised(t, "usage", 0)
	select {
	case <-s.done:
		assert.Equal(t, 2, s.code)
	case <-time.After(20 * time.Second):
		t.Fatal("supervisor kept restarting an agent that refuses its flags")
	}
}

// Guide 002's "restart one pod's Logtail": ilogtaild stop, then start,
// without the container restarting; status says which.
func TestInitdStopStart(t *testing.T) {
	s := startSupervised(t, "serve", 0)
	s.waitHealthy(t)
	code, out := initd(t, s.addr, "status")
	assert.Equal(t, 0, code)
	assert.Equal(t, "ilogtail is running\n", out)

	code, out = initd(t, s.addr, "stop")
	assert.Equal(t, 0, code, out)
	assert.Equal(t, "stop success\n", out)
	code, out = initd(t, s.addr, "status")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "ilogtail is not running: sluice-agent was stopped by /etc/init.d/ilogtaild stop")
	// Not restarted while held.
	time.Sleep(300 * time.Millisecond)
	assert.Len(t, s.eventLines(), 2)

	code, out = initd(t, s.addr, "start")
	assert.Equal(t, 0, code, out)
	assert.Equal(t, "ilogtail is running\n", out)
	code, _ = initd(t, s.addr, "status")
	assert.Equal(t, 0, code)
	assert.Len(t, s.eventLines(), 3) // start, stop, start

	code, out = initd(t, s.addr, "restart")
	assert.Equal(t, 0, code, out)
	assert.Equal(t, "stop success\nilogtail is running\n", out)

	// SIGTERM while stopped by ilogtaild: the container ends at once.
	_, _ = initd(t, s.addr, "stop")
	s.sigs <- syscall.SIGTERM
	<-s.done
	assert.Equal(t, 0, s.code)
}

// ilogtaild against an agent that runs without the supervisor says so.
func TestInitdUnsupervisedAgent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			fmt.Fprintln(w, "ok")
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	code, out := initd(t, addr, "status")
	assert.Equal(t, 0, code, out)
	code, out = initd(t, addr, "stop")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "was not started by run_logtail.sh")

	code, out = initd(t, "127.0.0.1:1", "status")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "ilogtail is not running: nothing answers at 127.0.0.1:1")
}

func TestLoopback(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:7953": "127.0.0.1:7953", ":7953": "127.0.0.1:7953", "[::]:1": "127.0.0.1:1", "10.0.0.1:5": "10.0.0.1:5",
	} {
		assert.Equal(t, want, loopback(in), in)
	}
}

func TestRunLogtailScriptRefusesBadDelay(t *testing.T) {
	var out bytes.Buffer
	assert.Equal(t, 2, runLogtailScript([]string{"ten"}, &out, &out))
	assert.Contains(t, out.String(), "whole number of seconds")
}
