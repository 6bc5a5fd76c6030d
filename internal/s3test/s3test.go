// Package s3test runs a real S3-compatible server for tests: SeaweedFS's
// `weed server -s3` (master, volume server, filer and S3 gateway in one
// process), built once by hack/ensure-s3.sh into $SLUICE_CACHE/s3/weed. One
// server is started per test binary, on the first call, on free loopback
// ports with its data in a temporary directory; each call gets a bucket of
// its own:
//
//	func TestMain(m *testing.M) { s3test.Main(m) }
//
//	b := s3test.NewBucket(t) // b.URL "s3://t-3/sluice", b.Endpoint, b.AccessKey, b.SecretKey
//
// Without the binary a test skips, or fails when SLUICE_REQUIRE_ALL=1.
package s3test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/sluicelog/sluice/internal/testenv"
)

// Credentials of the test server's one identity.
const (
	AccessKey = "sluice-test"
	SecretKey = "sluice-test-secret"
)

// Server is a running SeaweedFS.
type Server struct {
	dir      string
	Endpoint string // http://127.0.0.1:PORT
	cmd      *exec.Cmd
	done     chan struct{}
	n        atomic.Int64
	client   *minio.Client
}

var (
	once    sync.Once
	shared  *Server
	initErr error
)

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

// Wrap returns m whose Run also stops the shared server.
func Wrap(m Runner) Runner { return wrapped{m} }

// Main runs the tests and stops the shared server afterwards.
func Main(m *testing.M) { os.Exit(Wrap(m).Run()) }

// Get returns the shared server, starting it on first use.
func Get(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { shared, initErr = Start() })
	if initErr != nil {
		testenv.SkipOrFail(t, "s3test: %v", initErr)
	}
	return shared
}

// Bucket is a fresh bucket on the shared server.
type Bucket struct {
	Name                 string
	URL                  string // s3://Name/sluice
	Endpoint             string
	AccessKey, SecretKey string
}

// NewBucket creates an empty bucket.
func NewBucket(t testing.TB) Bucket {
	t.Helper()
	s := Get(t)
	name := "t-" + strconv.FormatInt(s.n.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.client.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("s3test: create bucket: %v", err)
	}
	return Bucket{Name: name, URL: "s3://" + name + "/sluice", Endpoint: s.Endpoint, AccessKey: AccessKey, SecretKey: SecretKey}
}

// Client is an S3 client for the shared server.
func (s *Server) Client() *minio.Client { return s.client }

func weedPath() (string, error) {
	if p := os.Getenv("SLUICE_WEED"); p != "" {
		return p, nil
	}
	cache := os.Getenv("SLUICE_CACHE")
	if cache == "" {
		// Tests run in their package directory; the cache is at the
		// repository root.
		dir, _ := os.Getwd()
		for ; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				cache = filepath.Join(dir, ".cache")
				break
			}
		}
	}
	p := filepath.Join(cache, "s3", "weed")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no SeaweedFS binary at %s (run hack/ensure-s3.sh, or set SLUICE_WEED)", p)
	}
	return p, nil
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for len(out) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// Start starts weed server -s3 in a temporary directory.
func Start() (*Server, error) {
	bin, err := weedPath()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sluice-s3test-")
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`{"identities":[{"name":"sluice","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]}]}`, AccessKey, SecretKey)
	if err := os.WriteFile(filepath.Join(dir, "s3.json"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	p, err := freePorts(8)
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, Endpoint: fmt.Sprintf("http://127.0.0.1:%d", p[6]), done: make(chan struct{})}
	args := []string{"server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir=" + filepath.Join(dir, "data"),
		"-master.port=" + strconv.Itoa(p[0]), "-master.port.grpc=" + strconv.Itoa(p[1]),
		"-volume.port=" + strconv.Itoa(p[2]), "-volume.port.grpc=" + strconv.Itoa(p[3]),
		"-filer", "-filer.port=" + strconv.Itoa(p[4]), "-filer.port.grpc=" + strconv.Itoa(p[5]),
		"-s3", "-s3.port=" + strconv.Itoa(p[6]), "-s3.port.grpc=" + strconv.Itoa(p[7]),
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.config=" + filepath.Join(dir, "s3.json"),
		// Every bucket is a collection that grows several volumes at
		// once; -volume.max=0 (free disk / volume size) ran out of volume
		// slots after ~20 buckets with 41 GB free, failing uploads with
		// "internal error". Volumes are sparse files, so slots are cheap.
		"-master.volumeSizeLimitMB=256", "-volume.max=2000"}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o750); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "weed.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	s.cmd = exec.Command(bin, args...)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // Pdeathsig is bound to the starting thread
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
		return nil, fmt.Errorf("start weed: %w", err)
	}
	s.client, err = minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), BucketLookup: minio.BucketLookupPath, Region: "us-east-1"})
	if err != nil {
		s.Stop()
		return nil, err
	}
	// Ready when a bucket can be created and written (the volume server
	// has registered with the master).
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(dir, "weed.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("weed exited: %s", tail(string(log), 4000))
		case <-time.After(200 * time.Millisecond):
		}
		if last = s.probe(); last == nil {
			return s, nil
		}
	}
	s.Stop()
	return nil, fmt.Errorf("SeaweedFS did not become ready within 2m: %w", last)
}

func (s *Server) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.Get(s.Endpoint)
	if err != nil {
		return err
	}
	resp.Body.Close()
	const b = "ready-probe"
	if ok, err := s.client.BucketExists(ctx, b); err != nil {
		return err
	} else if !ok {
		if err := s.client.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
			return err
		}
	}
	_, err = s.client.PutObject(ctx, b, "probe", strings.NewReader("ok"), 2, minio.PutObjectOptions{})
	if err != nil {
		return err
	}
	obj, err := s.client.GetObject(ctx, b, "probe", minio.GetObjectOptions{})
	if err != nil {
		return err
	}
	defer obj.Close()
	buf := make([]byte, 2)
	if _, err := obj.Read(buf); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Log returns the server's log.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "weed.log"))
	return string(b)
}

// Stop stops the server and removes its data.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

// Pid is the weed process id (and process group), for benchmarks.
func (s *Server) Pid() int { return s.cmd.Process.Pid }
