package api_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/api"
	"github.com/sluicelog/sluice/server/auth"
)

// spyBody records whether anything read it.
type spyBody struct {
	r    io.Reader
	read atomic.Bool
}

func (b *spyBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.r.Read(p)
}
func (b *spyBody) Close() error { return nil }

// The body of a request is read only once its signature, key and
// permission check out; declared sizes over the limits are refused before
// reading.
func TestBodyReadOnlyAfterAuth(t *testing.T) {
	h := newHarness(t)
	g := protocol.AppendLogGroup(nil, &protocol.LogGroup{Logs: []protocol.Log{{Time: uint32(time.Now().Unix()),
		Contents: []protocol.LogContent{{Key: "k", Value: "v"}}}}})
	send := func(sign func(*http.Request), contentLength int64, hdr map[string]string) (*httptest.ResponseRecorder, bool) {
		spy := &spyBody{r: bytes.NewReader(g)}
		r := httptest.NewRequest("POST", "http://proj.sluice.test/logstores/logs/shards/lb", nil)
		r.Body, r.ContentLength = spy, contentLength
		r.Header.Set("Content-Type", protocol.ContentTypeProtobuf)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		if sign != nil {
			sign(r)
		}
		w := httptest.NewRecorder()
		h.api.ServeHTTP(w, r)
		return w, spy.read.Load()
	}
	signWith := func(id, secret string) func(*http.Request) {
		return func(r *http.Request) {
			s := protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: id, AccessKeySecret: secret}}
			require.NoError(t, s.SignRequest(r, g, time.Now()))
		}
	}
	w, read := send(nil, int64(len(g)), nil)
	require.Equal(t, 401, w.Code)
	require.False(t, read, "no credentials: body not read")
	w, read = send(signWith("ak", "wrong"), int64(len(g)), nil)
	require.Equal(t, 401, w.Code)
	require.False(t, read, "wrong secret: body not read")
	w, read = send(signWith("nobody", "wrong"), int64(len(g)), nil)
	require.Equal(t, 401, w.Code)
	require.False(t, read, "unknown key: body not read")
	w, read = send(signWith("ak", "sk"), 11<<20+1, nil)
	require.Equal(t, 400, w.Code)
	require.Equal(t, protocol.CodePostBodyTooLarge, errCode(t, w))
	require.False(t, read, "Content-Length over the limit: body not read")
	w, read = send(signWith("ak", "sk"), int64(len(g)), map[string]string{"x-log-compresstype": "lz4", "x-log-bodyrawsize": "999999999"})
	require.Equal(t, 400, w.Code)
	require.Contains(t, w.Body.String(), "x-log-bodyrawsize 999999999 exceeds")
	require.False(t, read, "declared raw size over the limit: body not read")
	w, read = send(signWith("ak", "sk"), int64(len(g)), nil)
	require.Equal(t, 200, w.Code, w.Body.String())
	require.True(t, read)
}

// blockingBody delivers its bytes only once released.
type blockingBody struct {
	r       io.Reader
	release chan struct{}
	started chan struct{}
	once    atomic.Bool
}

func (b *blockingBody) Read(p []byte) (int, error) {
	if b.once.CompareAndSwap(false, true) {
		close(b.started)
	}
	<-b.release
	return b.r.Read(p)
}
func (b *blockingBody) Close() error { return nil }

// Bodies in flight share one budget: while one request holds it, another
// waits BodyBudgetWait and gets 503 ServerBusy with Retry-After.
func TestBodyBudget(t *testing.T) {
	h := newHarness(t)
	a, err := api.New(api.Config{BaseDomain: "sluice.test", Meta: h.meta, Logs: h.logs, Auth: auth.New(h.meta, auth.Options{}),
		Registerer: prometheus.NewRegistry(), MaxInflightBodyBytes: 1 << 20, BodyBudgetWait: 200 * time.Millisecond})
	require.NoError(t, err)
	g := protocol.AppendLogGroup(nil, &protocol.LogGroup{Logs: []protocol.Log{{Time: uint32(time.Now().Unix()),
		Contents: []protocol.LogContent{{Key: "k", Value: string(bytes.Repeat([]byte("x"), 700<<10))}}}}})
	request := func(body io.ReadCloser) *http.Request {
		r := httptest.NewRequest("POST", "http://proj.sluice.test/logstores/logs/shards/lb", nil)
		r.Body, r.ContentLength = body, int64(len(g))
		r.Header.Set("Content-Type", protocol.ContentTypeProtobuf)
		s := protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: "ak", AccessKeySecret: "sk"}}
		require.NoError(t, s.SignRequest(r, g, time.Now()))
		return r
	}
	slow := &blockingBody{r: bytes.NewReader(g), release: make(chan struct{}), started: make(chan struct{})}
	first := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.ServeHTTP(first, request(slow))
	}()
	<-slow.started
	w := httptest.NewRecorder()
	start := time.Now()
	a.ServeHTTP(w, request(io.NopCloser(bytes.NewReader(g))))
	require.Equal(t, 503, w.Code, w.Body.String())
	require.Equal(t, protocol.CodeServerBusy, errCode(t, w))
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	close(slow.release)
	<-done
	require.Equal(t, 200, first.Code, first.Body.String())
	w = httptest.NewRecorder()
	a.ServeHTTP(w, request(io.NopCloser(bytes.NewReader(g))))
	require.Equal(t, 200, w.Code, "the budget is free again")
}
