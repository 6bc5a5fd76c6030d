package sls_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/protocol"
)

const (
	testAK     = "agent-ak"
	testSecret = "agent-secret"
)

// logServer is a PutLogs endpoint that does what a Log Service does with a
// request: checks the path and Host, verifies the signature and the date,
// decompresses with the declared raw size and decodes the LogGroup. Tests
// script failures with fail.
type logServer struct {
	*httptest.Server
	t *testing.T

	mu       sync.Mutex
	groups   []*protocol.LogGroup
	requests int
	hosts    []string
	// fail, when set, may answer a request instead of accepting it: it
	// returns a status and error code, or 0 to accept.
	fail func(n int, r *http.Request) (int, protocol.ErrorCode)
	// clockOffset shifts the server's clock (x-log-time and skew check).
	clockOffset time.Duration
	// delay holds every response this long (a slow, loaded server).
	delay time.Duration
	// dateSkews records, per request, the server time minus the request's
	// Date header.
	dateSkews []time.Duration
	errs      []error
}

func newLogServer(t *testing.T) *logServer {
	s := &logServer{t: t}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

func (s *logServer) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	n := s.requests
	fail := s.fail
	now := time.Now().Add(s.clockOffset)
	s.hosts = append(s.hosts, r.Host)
	if d, err := http.ParseTime(r.Header.Get("Date")); err == nil {
		s.dateSkews = append(s.dateSkews, now.Sub(d))
	}
	delay := s.delay
	s.mu.Unlock()
	defer time.Sleep(delay)

	w.Header().Set(protocol.HeaderRequestID, fmt.Sprintf("req-%d", n))
	w.Header().Set(protocol.HeaderLogTime, strconv.FormatInt(now.Unix(), 10))
	reject := func(err error) {
		s.mu.Lock()
		s.errs = append(s.errs, err)
		s.mu.Unlock()
		protocol.WriteError(w, fmt.Sprintf("req-%d", n), err)
	}
	if fail != nil {
		if status, code := fail(n, r); status != 0 {
			e := protocol.NewError(code, "scripted failure")
			e.HTTPStatus = status
			protocol.WriteError(w, fmt.Sprintf("req-%d", n), e)
			return
		}
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/logstores/") || !strings.HasSuffix(r.URL.Path, "/shards/lb") {
		reject(protocol.Errorf(protocol.CodeParameterInvalid, "unexpected %s %s", r.Method, r.URL.Path))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if err := protocol.CheckClockSkew(r.Header, now, 0); err != nil {
		reject(err)
		return
	}
	if _, err := protocol.VerifyRequest(context.Background(), r, body, func(_ context.Context, ak string) (string, error) {
		if ak != testAK {
			return "", protocol.ErrUnknownAccessKey
		}
		return testSecret, nil
	}); err != nil {
		reject(err)
		return
	}
	ct, err := protocol.ParseCompressType(r.Header.Get(protocol.HeaderCompressType))
	if err != nil {
		reject(err)
		return
	}
	size := -1
	if v := r.Header.Get(protocol.HeaderBodyRawSize); v != "" && ct != protocol.CompressNone {
		size, _ = strconv.Atoi(v)
	}
	raw, err := protocol.Decompress(nil, body, ct, size, 0)
	if err != nil {
		reject(err)
		return
	}
	var g protocol.LogGroup
	if err := g.Unmarshal(raw); err != nil {
		reject(err)
		return
	}
	s.mu.Lock()
	s.groups = append(s.groups, g.Clone())
	s.mu.Unlock()
}

func (s *logServer) received() []*protocol.LogGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*protocol.LogGroup(nil), s.groups...)
}

func (s *logServer) rejected() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

func tag(g *protocol.LogGroup, key string) string {
	for _, t := range g.LogTags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

func content(l *protocol.Log, key string) string {
	for _, c := range l.Contents {
		if c.Key == key {
			return c.Value
		}
	}
	return ""
}
