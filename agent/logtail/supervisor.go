package logtail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// SupervisorConfig configures Supervise.
type SupervisorConfig struct {
	// Exe is the sluice-agent binary; the child runs `Exe run Args…`.
	Exe string
	// Args are the child's `run` flags (without --http-listen and
	// --stop-delay, which the supervisor sets).
	Args []string
	// Env is the child's environment (os.Environ()).
	Env []string
	// Listen is the address /healthz, /status and /metrics are served on
	// (proxied to the child), and the ilogtaild controls.
	Listen string
	// StopDelay: after SIGTERM the child keeps collecting this long.
	StopDelay time.Duration
	// Signals delivers SIGTERM/SIGINT (signal.Notify).
	Signals <-chan os.Signal
	// Stdout and Stderr receive the child's output.
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
	// MaxBackoff bounds the wait before a crashed child is restarted
	// (default 30 s).
	MaxBackoff time.Duration
}

// Paths of the supervisor's control endpoints (POST), used by ilogtaild.
const (
	pathStop  = "/ilogtaild/stop"
	pathStart = "/ilogtaild/start"
)

// exitUsage is the child's exit code for bad flags: restarting cannot help.
const exitUsage = 2

// supervisor is Supervise's state.
type supervisor struct {
	cfg SupervisorConfig
	log *slog.Logger

	mu        sync.Mutex
	child     *exec.Cmd
	childAddr string
	exited    chan struct{} // closed when child exits
	exitCode  int
	held      bool // stopped by ilogtaild stop: not restarted until start
	stopping  bool // the supervisor is shutting down
	changed   chan struct{}
}

// Supervise runs sluice-agent as a child process the way Logtail's
// run_logtail.sh runs ilogtail: the child is restarted when it dies,
// `ilogtaild stop` and `ilogtaild start` stop and start it without
// restarting the container, and SIGTERM is answered by collecting for
// StopDelay more before the child is stopped (it then delivers what it read
// and saves checkpoints). It returns the exit code for the container: the
// child's last one.
func Supervise(ctx context.Context, cfg SupervisorConfig) int {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	s := &supervisor{cfg: cfg, log: cfg.Logger, changed: make(chan struct{})}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		s.log.Error("cannot serve status and the ilogtaild controls", "addr", cfg.Listen, "err", err)
		return 1
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	s.log.Info("supervising sluice-agent (run_logtail.sh)", "addr", ln.Addr().String(), "stop_delay", cfg.StopDelay)

	backoff := time.Second
	for {
		if !s.isHeld() {
			started := time.Now()
			if err := s.start(); err != nil {
				s.log.Error("cannot start sluice-agent", "err", err)
				return 1
			}
			code, sig := s.wait(ctx)
			if sig != nil {
				return s.shutdown(ctx, sig)
			}
			if s.isHeld() {
				s.log.Info("sluice-agent stopped by ilogtaild stop; start it again with /etc/init.d/ilogtaild start", "exit_code", code)
				continue
			}
			if code == exitUsage {
				s.log.Error("sluice-agent refused its flags; not restarting", "exit_code", code)
				return code
			}
			if time.Since(started) > time.Minute {
				backoff = time.Second
			}
			s.log.Error("sluice-agent exited; restarting", "exit_code", code, "in", backoff)
			select {
			case <-time.After(backoff):
			case sig := <-cfg.Signals:
				s.log.Info("signal while restarting; stopping", "signal", sig.String())
				return code
			case <-ctx.Done():
				return code
			}
			backoff = min(2*backoff, cfg.MaxBackoff)
			continue
		}
		// Held: wait for ilogtaild start or a signal.
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case sig := <-cfg.Signals:
			s.log.Info("signal while stopped by ilogtaild; exiting", "signal", sig.String())
			return 0
		case <-ctx.Done():
			return 0
		}
	}
}

func (s *supervisor) isHeld() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// notify wakes whoever waits for a state change.
func (s *supervisor) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// start runs a child on a free loopback port.
func (s *supervisor) start() error {
	addr, err := freeLoopback()
	if err != nil {
		return err
	}
	args := append([]string{"run"}, s.cfg.Args...)
	// Last, so they win over the same flags in Args.
	args = append(args, "--http-listen="+addr, "--stop-delay=0s")
	cmd := exec.Command(s.cfg.Exe, args...)
	cmd.Env = s.cfg.Env
	cmd.Stdout, cmd.Stderr = s.cfg.Stdout, s.cfg.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.cfg.Exe, err)
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.child, s.childAddr, s.exited = cmd, addr, exited
	s.notify()
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		if code < 0 && err != nil {
			code = 1 // killed by a signal
		}
		s.mu.Lock()
		s.exitCode = code
		s.child = nil
		close(exited)
		s.notify()
		s.mu.Unlock()
	}()
	return nil
}

// wait returns when the child exits (its code) or a signal arrives.
func (s *supervisor) wait(ctx context.Context) (int, os.Signal) {
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	select {
	case <-exited:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.exitCode, nil
	case sig := <-s.cfg.Signals:
		return 0, sig
	case <-ctx.Done():
		return 0, syscall.SIGTERM
	}
}

// shutdown answers the container's stop signal: collect for the stop
// delay, then stop the child and wait for it. A second signal skips the
// delay, a third is passed on (the child then skips its delivery wait).
func (s *supervisor) shutdown(ctx context.Context, sig os.Signal) int {
	s.mu.Lock()
	s.stopping = true
	exited := s.exited
	s.mu.Unlock()
	if d := s.cfg.StopDelay; d > 0 {
		s.log.Info("signal received; still collecting during the stop delay", "signal", sig.String(), "stop_delay", d)
		select {
		case <-time.After(d):
		case sig = <-s.cfg.Signals:
			s.log.Warn("second signal; skipping the stop delay", "signal", sig.String())
		case <-exited:
		}
	}
	s.signalChild(syscall.SIGTERM)
	for {
		select {
		case <-exited:
			s.mu.Lock()
			defer s.mu.Unlock()
			s.log.Info("sluice-agent stopped", "exit_code", s.exitCode)
			return s.exitCode
		case sig = <-s.cfg.Signals:
			s.log.Warn("signal passed on: not waiting for delivery", "signal", sig.String())
			s.signalChild(sig)
		}
	}
}

func (s *supervisor) signalChild(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.child != nil && s.child.Process != nil {
		_ = s.child.Process.Signal(sig)
	}
}

// handler serves the ilogtaild controls and proxies the rest to the child.
func (s *supervisor) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathStop, s.handleStop)
	mux.HandleFunc("POST "+pathStart, s.handleStart)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		addr, running, held := s.childAddr, s.child != nil, s.held
		s.mu.Unlock()
		if !running {
			msg := "sluice-agent is restarting"
			if held {
				msg = "sluice-agent was stopped by /etc/init.d/ilogtaild stop: start it with /etc/init.d/ilogtaild start"
			}
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
		}
		p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr})
		p.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "sluice-agent is starting: "+err.Error(), http.StatusServiceUnavailable)
		}
		p.ServeHTTP(w, r)
	})
	return mux
}

func (s *supervisor) handleStop(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		http.Error(w, "the container is stopping", http.StatusConflict)
		return
	}
	s.held = true
	exited, running := s.exited, s.child != nil
	s.mu.Unlock()
	if running {
		s.signalChild(syscall.SIGTERM)
		select {
		case <-exited:
		case <-r.Context().Done():
			return
		case <-time.After(2 * time.Minute):
			http.Error(w, "sluice-agent did not stop within 2 minutes", http.StatusGatewayTimeout)
			return
		}
	}
	fmt.Fprintln(w, "stop success")
}

func (s *supervisor) handleStart(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		http.Error(w, "the container is stopping", http.StatusConflict)
		return
	}
	if s.held {
		s.held = false
		s.notify()
	}
	s.mu.Unlock()
	// Wait until the child answers its health check.
	deadline := time.Now().Add(time.Minute)
	for {
		s.mu.Lock()
		addr, running := s.childAddr, s.child != nil
		s.mu.Unlock()
		if running && healthy(r.Context(), addr) {
			fmt.Fprintln(w, "ilogtail is running")
			return
		}
		if time.Now().After(deadline) {
			http.Error(w, "sluice-agent did not become healthy within a minute; see the container's log", http.StatusGatewayTimeout)
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func healthy(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freeLoopback returns a loopback address nothing listens on now.
func freeLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a port for the agent: %w", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr, nil
}

// parseDelaySeconds reads run_logtail.sh's argument (whole seconds).
func parseDelaySeconds(s string) (time.Duration, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errors.New("the stop delay is a whole number of seconds, e.g. run_logtail.sh 10")
	}
	return time.Duration(n) * time.Second, nil
}
