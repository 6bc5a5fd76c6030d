// Package pgtest runs a throw-away PostgreSQL server for tests: the real
// server binaries from Debian's postgresql package (hack/ensure-postgres.sh
// installs them), a cluster initdb'd in a temporary directory, listening on
// 127.0.0.1 on a free port and a private socket directory. No system
// service is used or assumed. One server is started per test binary, on the
// first call, and each call gets a database of its own:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	dsn := pgtest.DSN(t) // postgres://sluice@127.0.0.1:PORT/t_3?sslmode=disable
//
// Without the binaries a test skips, or fails when SLUICE_REQUIRE_ALL=1.
// postgres refuses to run as root, so as root the cluster belongs to the
// `postgres` user the Debian package creates. Durability settings are off
// (fsync=off): the server is a test fixture, not the thing under test.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicelog/sluice/internal/testenv"
)

// Server is a running test PostgreSQL server.
type Server struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
	n    atomic.Int64
}

var (
	once    sync.Once
	shared  *Server
	initErr error
)

// Main runs the package's tests and stops the shared server afterwards.
// Call it from TestMain.
func Main(m *testing.M) { os.Exit(Wrap(m).Run()) }

// Runner is what testing.M and goleak.VerifyTestMain share.
type Runner interface{ Run() int }

type wrapped struct{ Runner }

func (w wrapped) Run() int {
	code := w.Runner.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Wrap returns m whose Run also stops the shared server, for a TestMain
// that hands m on (goleak.VerifyTestMain(pgtest.Wrap(m))).
func Wrap(m Runner) Runner { return wrapped{m} }

// Get returns the shared server, starting it on first use; it skips t
// (fails it under SLUICE_REQUIRE_ALL=1) when PostgreSQL is not installed.
func Get(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { shared, initErr = Start() })
	if initErr != nil {
		testenv.SkipOrFail(t, "pgtest: %v", initErr)
	}
	return shared
}

// DSN returns the address of a new, empty database on the shared server.
func DSN(t testing.TB) string {
	t.Helper()
	s := Get(t)
	dsn, err := s.CreateDatabase(context.Background())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// binDir finds initdb and postgres: $SLUICE_PG_BIN, else the newest
// /usr/lib/postgresql/*/bin.
func binDir() (string, error) {
	if d := os.Getenv("SLUICE_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (run hack/ensure-postgres.sh, or set SLUICE_PG_BIN)")
}

// Start initdb's a cluster in a temporary directory and starts postgres.
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sluice-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, done: make(chan struct{})}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs the postgres user (from the postgresql package): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "sluice", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	s.port, err = freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close()
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=64MB")
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// Pdeathsig: the server dies with the test binary even when it is
	// killed; it is bound to the starting thread, so that thread is kept.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the server
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = s.cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		c, err := pgx.Connect(ctx, s.url("postgres"))
		if err == nil {
			c.Close(ctx)
			return s, nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres exited: %s", log)
		case <-ctx.Done():
			s.Stop()
			return nil, fmt.Errorf("postgres did not accept connections within 60s: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) url(db string) string {
	return fmt.Sprintf("postgres://sluice@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// CreateDatabase creates a new empty database and returns its address.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := "t_" + strconv.FormatInt(s.n.Add(1), 10)
	c, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	// FILE_COPY (PostgreSQL 15+) copies the template's files instead of
	// logging every page: ~0.7 s instead of ~1.3 s a database here.
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name+" STRATEGY = FILE_COPY"); err != nil {
		if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			return "", fmt.Errorf("create database %s: %w", name, err)
		}
	}
	return s.url(name), nil
}

// Log returns the server's log (for a failing test's output).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	return strings.TrimSpace(string(b))
}

// Stop stops the server (fast shutdown) and removes its files.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

// Pid is the postmaster's process id (also its process group: the
// backends are in it), for benchmarks that count its CPU time.
func (s *Server) Pid() int { return s.cmd.Process.Pid }
