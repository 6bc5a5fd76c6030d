package e2etest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Process is one run of a program as a child process. Its stdout and stderr
// are appended to a log file, so the runs of a restarted program make one
// log to read after a failure.
type Process struct {
	// Name is for messages: the log file's name without its extension.
	Name string
	// Cmd is the running command (Cmd.Process.Pid for resource figures).
	Cmd *exec.Cmd
	// LogPath is the file stdout and stderr are appended to.
	LogPath string

	t    testing.TB
	done chan struct{}
	err  error
}

// Start runs argv (argv[0] is the program) with env added to this
// process's environment, its output appended to logPath. The process is
// SIGKILLed when the test ends, if it is still running then.
func Start(t testing.TB, logPath string, argv []string, env ...string) *Process {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		require.NoError(t, err, "start %s", argv[0])
	}
	p := &Process{
		Name:    strings.TrimSuffix(filepath.Base(logPath), filepath.Ext(logPath)),
		Cmd:     cmd,
		LogPath: logPath,
		t:       t,
		done:    make(chan struct{}),
	}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	return p
}

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Err is how the process exited (nil: status 0); valid once it has.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Signal sends sig, failing the test if it cannot be sent.
func (p *Process) Signal(sig os.Signal) {
	p.t.Helper()
	require.NoError(p.t, p.Cmd.Process.Signal(sig), "signal %s", p.Name)
}

// Kill SIGKILLs the process, if it is still running, and waits for it.
func (p *Process) Kill() {
	if p.Running() {
		_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// Exited waits up to timeout for the process to exit and reports whether it
// did.
func (p *Process) Exited(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Wait waits up to timeout for the process to exit by itself and returns
// how it exited, or an error saying it is still running.
func (p *Process) Wait(timeout time.Duration) error {
	if !p.Exited(timeout) {
		return fmt.Errorf("%s still running after %s", p.Name, timeout)
	}
	return p.err
}

// Stop sends SIGTERM and waits up to timeout for the process to exit; then
// it SIGKILLs it and says so.
func (p *Process) Stop(timeout time.Duration) error {
	if p.Running() {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	}
	if !p.Exited(timeout) {
		p.Kill()
		return fmt.Errorf("%s did not stop within %s", p.Name, timeout)
	}
	return p.err
}

// LogTail is the end of the process log, for failure messages.
func (p *Process) LogTail() string { return Tail(p.LogPath) }

// Tail is the last 8 KiB of the file at path ("" when missing), for
// failure messages.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	s := string(b)
	if len(s) > 8000 {
		s = "…" + s[len(s)-8000:]
	}
	return strings.TrimSpace(s)
}

// FreeAddr is a 127.0.0.1 address no one listens on right now, for a
// child process to listen on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// Dir is t.TempDir, or with SLUICE_E2E_KEEP=1 a directory that is kept
// (and logged) for looking at the process logs, the output and the state
// after a failure.
func Dir(t testing.TB) string {
	t.Helper()
	if os.Getenv("SLUICE_E2E_KEEP") == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	require.NoError(t, err)
	t.Logf("keeping %s", dir)
	return dir
}
