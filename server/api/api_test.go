package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/api"
	"github.com/sluicelog/sluice/server/auth"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/meta/jsonfile"
	"github.com/sluicelog/sluice/server/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memStore is an in-memory LogStore for unit tests of the handlers: it
// records writes (deep copies, as a real store must not keep request
// memory) and returns a configurable error.
type memStore struct {
	mu      sync.Mutex
	groups  []*protocol.LogGroup
	err     error
	search  *store.SearchResult
	discard bool // count only (benchmarks)
	block   bool // Search waits for its context to end
	logs    int
	shards  []int // of each write
}

// The shard API is tested against the real store (server/app).
func (m *memStore) Cursor(context.Context, string, string, int, store.CursorAt) (int64, error) {
	return 0, errors.New("memStore has no shards")
}
func (m *memStore) CursorTime(context.Context, string, string, int, int64) (time.Time, error) {
	return time.Time{}, errors.New("memStore has no shards")
}
func (m *memStore) Pull(context.Context, string, string, int, store.PullRequest) (*store.PullResult, error) {
	return nil, errors.New("memStore has no shards")
}

func (m *memStore) EnsureLogstore(context.Context, store.LogstoreSpec) error { return nil }
func (m *memStore) DropLogstore(context.Context, string, string) error       { return nil }
func (m *memStore) Write(ctx context.Context, p, l string, groups []protocol.LogGroup, t time.Time) error {
	return m.WriteShard(ctx, p, l, 0, groups, t)
}
func (m *memStore) WriteShard(_ context.Context, _, _ string, shard int, groups []protocol.LogGroup, _ time.Time) error {
	m.mu.Lock()
	m.shards = append(m.shards, shard)
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	for i := range groups {
		m.logs += len(groups[i].Logs)
	}
	if m.discard {
		return nil
	}
	for i := range groups {
		m.groups = append(m.groups, groups[i].Clone())
	}
	return nil
}
func (m *memStore) Search(ctx context.Context, _, _ string, _ store.SearchRequest) (*store.SearchResult, error) {
	if m.block {
		<-ctx.Done()
		return nil, fmt.Errorf("search interrupted: %w", ctx.Err())
	}
	if m.err != nil {
		return nil, m.err
	}
	return m.search, nil
}
func (m *memStore) Histogram(context.Context, string, string, store.HistogramRequest) ([]store.Bucket, error) {
	return nil, m.err
}

type harness struct {
	api    *api.API
	meta   *jsonfile.Store
	logs   *memStore
	signer protocol.Signer
}

func newHarness(tb testing.TB) *harness {
	tb.Helper()
	ms, err := jsonfile.Open(tb.TempDir())
	require.NoError(tb, err)
	tb.Cleanup(func() { ms.Close() })
	ctx := context.Background()
	require.NoError(tb, ms.PutAccessKey(ctx, meta.AccessKey{ID: "ak", Secret: "sk", Admin: true}))
	require.NoError(tb, ms.CreateProject(ctx, meta.Project{Name: "proj"}))
	require.NoError(tb, ms.CreateLogstore(ctx, meta.Logstore{Project: "proj", Name: "logs", TTL: 7, ShardCount: 1}))
	require.NoError(tb, ms.PutIndex(ctx, "proj", "logs", indexCfg()))
	logs := &memStore{}
	a, err := api.New(api.Config{
		BaseDomain: "sluice.test", Meta: ms, Logs: logs, Auth: auth.New(ms, auth.Options{}),
		Registerer: prometheus.NewRegistry(),
	})
	require.NoError(tb, err)
	return &harness{api: a, meta: ms, logs: logs, signer: protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: "ak", AccessKeySecret: "sk"}}}
}

func (h *harness) do(tb testing.TB, method, host, target string, hdr http.Header, body []byte) *httptest.ResponseRecorder {
	tb.Helper()
	r := httptest.NewRequest(method, "http://"+host+target, bytes.NewReader(body))
	for k, v := range hdr {
		r.Header[k] = v
	}
	if body != nil && r.Header.Get("Content-Type") == "" {
		r.Header.Set("Content-Type", protocol.ContentTypeProtobuf)
	}
	if body == nil {
		r.Body = http.NoBody
	}
	require.NoError(tb, h.signer.SignRequest(r, body, time.Now()))
	w := httptest.NewRecorder()
	h.api.ServeHTTP(w, r)
	return w
}

func errCode(tb testing.TB, w *httptest.ResponseRecorder) protocol.ErrorCode {
	tb.Helper()
	var e protocol.Error
	require.NoError(tb, json.Unmarshal(w.Body.Bytes(), &e), w.Body.String())
	return e.Code
}

func TestPutLogsJSONBody(t *testing.T) {
	h := newHarness(t)
	now := time.Now().Unix()
	body := []byte(fmt.Sprintf(`{"__topic__":"tp","__source__":"1.2.3.4","__logs__":[{"__time__":%d,"msg":"hi","n":42}],"__tags__":{"env":"prod"}}`, now))
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/json")
	w := h.do(t, "POST", "proj.sluice.test", "/logstores/logs/shards/lb", hdr, body)
	require.Equal(t, 200, w.Code, w.Body.String())
	require.Len(t, h.logs.groups, 1)
	g := h.logs.groups[0]
	require.Equal(t, "tp", g.Topic)
	require.Equal(t, "1.2.3.4", g.Source)
	require.Equal(t, []protocol.LogTag{{Key: "env", Value: "prod"}}, g.LogTags)
	require.Equal(t, uint32(now), g.Logs[0].Time)
	require.Equal(t, []protocol.LogContent{{Key: "msg", Value: "hi"}, {Key: "n", Value: "42"}}, g.Logs[0].Contents)
}

func TestStoreErrorsMapToStatus(t *testing.T) {
	h := newHarness(t)
	body := protocol.AppendLogGroup(nil, &protocol.LogGroup{Logs: []protocol.Log{{Time: uint32(time.Now().Unix()), Contents: []protocol.LogContent{{Key: "k", Value: "v"}}}}})
	for _, c := range []struct {
		err    error
		status int
		code   protocol.ErrorCode
	}{
		{store.ErrOverloaded, 503, protocol.CodeServerBusy},
		{store.ErrLogstoreNotFound, 404, protocol.CodeLogStoreNotExist},
		{errors.New("disk on fire"), 500, protocol.CodeInternalServerError},
	} {
		h.logs.err = c.err
		w := h.do(t, "POST", "proj.sluice.test", "/logstores/logs", nil, body)
		require.Equal(t, c.status, w.Code, w.Body.String())
		require.Equal(t, c.code, errCode(t, w))
		require.NotContains(t, w.Body.String(), "disk on fire", "internal detail stays in the server log")
		require.NotEmpty(t, w.Header().Get(protocol.HeaderRequestID))
		require.NotEmpty(t, w.Header().Get(protocol.HeaderLogTime))
	}
	h.logs.err = store.ErrInvalidQuery
	w := h.do(t, "POST", "proj.sluice.test", "/logstores/logs/logs", nil, []byte(`{"from":0,"to":10,"query":"("}`))
	require.Equal(t, 400, w.Code, w.Body.String())
}

func TestProjectAddressing(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		host   string
		hdr    string
		status int
		code   protocol.ErrorCode
	}{
		{"proj.sluice.test", "", 200, ""},
		{"proj.sluice.test:8080", "", 200, ""},
		{"PROJ.Sluice.Test.", "", 200, ""},
		{"127.0.0.1:8080", "proj", 200, ""},
		{"other.sluice.test", "proj", 200, ""}, // the header wins
		{"sluice.test", "", 400, protocol.CodeInvalidHost},
		{"127.0.0.1", "", 400, protocol.CodeInvalidHost},
		{"proj.127.0.0.1:8080", "", 200, ""}, // IP endpoint, as Logtail and the SDKs address it
		{"proj.10.0.0.5", "", 200, ""},       // without a port
		{"a_b.127.0.0.1", "", 400, protocol.CodeInvalidHost},
		{"nope-proj.127.0.0.1:8080", "", 404, protocol.CodeProjectNotExist},
		{"zz.sluice.test", "", 400, protocol.CodeInvalidHost}, // too short a name
		{"a_b.sluice.test", "", 400, protocol.CodeInvalidHost},
		{"nope-proj.sluice.test", "", 404, protocol.CodeProjectNotExist},
	} {
		hdr := http.Header{}
		if c.hdr != "" {
			hdr.Set(protocol.HeaderProject, c.hdr)
		}
		w := h.do(t, "GET", c.host, "/logstores", hdr, nil)
		require.Equal(t, c.status, w.Code, "%+v: %s", c, w.Body.String())
		if c.code != "" {
			require.Equal(t, c.code, errCode(t, w), "%+v", c)
		}
	}
}

func TestGetLogsShape(t *testing.T) {
	h := newHarness(t)
	h.logs.search = &store.SearchResult{
		HasSQL:  true,
		Columns: []store.Column{{Name: "status", Type: "bigint"}, {Name: "n", Type: "bigint"}},
		Rows:    [][]store.Field{{{Key: "status", Value: "500"}, {Key: "n", Value: "3"}}},
	}
	w := h.do(t, "POST", "proj.sluice.test", "/logstores/logs/logs", nil, []byte(`{"from":"0","to":10,"line":10,"query":"* | select status, count(*) as n group by status"}`))
	require.Equal(t, 200, w.Code, w.Body.String())
	var got struct {
		Meta map[string]any      `json:"meta"`
		Data []map[string]string `json:"data"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got), "every value is a string")
	require.Equal(t, "Complete", got.Meta["progress"])
	require.Equal(t, true, got.Meta["hasSQL"])
	require.EqualValues(t, 1, got.Meta["count"])
	require.Equal(t, []any{"status", "n"}, got.Meta["keys"])
	require.Equal(t, []map[string]string{{"status": "500", "n": "3"}}, got.Data)
	require.Empty(t, w.Header().Get(protocol.HeaderCompressType), "plain JSON replies carry no compress headers")
	require.Empty(t, w.Header().Get(protocol.HeaderBodyRawSize))

	w = h.do(t, "POST", "proj.sluice.test", "/logstores/logs/logs", nil, []byte(`{"from":0,"to":10,"line":101}`))
	require.Equal(t, 400, w.Code)
	require.Equal(t, protocol.CodeParameterInvalid, errCode(t, w))
	w = h.do(t, "POST", "proj.sluice.test", "/logstores/logs/logs", nil, []byte(`{"from":10,"to":0}`))
	require.Equal(t, 400, w.Code)
	w = h.do(t, "POST", "proj.sluice.test", "/logstores/logs/logs", nil, []byte(`not json`))
	require.Equal(t, protocol.CodePostBodyInvalid, errCode(t, w))
}

func TestUnknownPathsAndMethods(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct{ method, path string }{
		{"GET", "/nothing"}, {"PATCH", "/logstores/logs"}, {"GET", "/logstores//logs"}, {"POST", "/configs/x/y/z"},
	} {
		w := h.do(t, c.method, "proj.sluice.test", c.path, nil, nil)
		require.Equal(t, 404, w.Code, "%+v", c)
		require.NotEmpty(t, w.Header().Get(protocol.HeaderRequestID))
	}
	w := h.do(t, "GET", "proj.sluice.test", "/logstores/logs?type=context_log", nil, nil)
	require.Equal(t, 400, w.Code)
}

func TestConfigValidation(t *testing.T) {
	ms, err := jsonfile.Open(t.TempDir())
	require.NoError(t, err)
	defer ms.Close()
	ctx := context.Background()
	require.NoError(t, ms.PutAccessKey(ctx, meta.AccessKey{ID: "ak", Secret: "sk", Admin: true}))
	require.NoError(t, ms.CreateProject(ctx, meta.Project{Name: "proj"}))
	a, err := api.New(api.Config{BaseDomain: "sluice.test", Meta: ms, Logs: &memStore{}, Auth: auth.New(ms, auth.Options{}),
		ValidateConfig: func(raw []byte) error {
			return errors.New("inputDetail.logPath: required: set the directory to collect")
		}})
	require.NoError(t, err)
	h := &harness{api: a, signer: protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: "ak", AccessKeySecret: "sk"}}}
	w := h.do(t, "POST", "proj.sluice.test", "/configs", nil, []byte(`{"configName":"c1","inputType":"file"}`))
	require.Equal(t, 400, w.Code)
	require.Contains(t, w.Body.String(), "inputDetail.logPath")
	w = h.do(t, "POST", "proj.sluice.test", "/configs", nil, []byte(`{"inputType":"file"}`))
	require.Equal(t, 400, w.Code)
	require.Contains(t, w.Body.String(), "configName")
}

// FuzzPutLogs feeds arbitrary bodies and compression headers to PutLogs:
// the reply is 200 or a 4xx, never a 5xx (clients would retry garbage
// forever) and never a panic.
func FuzzPutLogs(f *testing.F) {
	g := protocol.AppendLogGroup(nil, &protocol.LogGroup{Topic: "t", Logs: []protocol.Log{{Time: uint32(time.Now().Unix()), Contents: []protocol.LogContent{{Key: "k", Value: "v"}}}}})
	lz, _ := protocol.AppendCompressed(nil, g, protocol.CompressLZ4)
	zs, _ := protocol.AppendCompressed(nil, g, protocol.CompressZstd)
	pl := protocol.AppendSlsLogPackageList(nil, &protocol.SlsLogPackageList{Packages: []protocol.SlsLogPackage{{Data: lz, UncompressSize: int32(len(g)), HasUncompressSize: true}}})
	f.Add(g, "", int64(-1), false, false)
	f.Add(lz, "lz4", int64(len(g)), false, false)
	f.Add(lz, "lz4", int64(1<<30), false, false)
	f.Add(zs, "zstd", int64(-1), false, false)
	f.Add(pl, "lz4", int64(-1), true, false)
	f.Add([]byte{0x0a, 0x80}, "deflate", int64(5), false, false)
	f.Add([]byte(`{"__topic__":"t","__logs__":[{"__time__":"12","a":1,"b":null}],"__tags__":{"x":[1]}}`), "", int64(-1), false, true)
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, body []byte, ct string, raw int64, batch, isJSON bool) {
		hdr := http.Header{}
		if isJSON {
			hdr.Set("Content-Type", "application/json")
		}
		if ct != "" {
			hdr.Set(protocol.HeaderCompressType, ct)
		}
		if raw >= 0 {
			hdr.Set(protocol.HeaderBodyRawSize, strconv.FormatInt(raw, 10))
		}
		if batch {
			hdr.Set(protocol.HeaderMode, protocol.ModeBatchGroup)
		}
		w := h.do(t, "POST", "proj.sluice.test", "/logstores/logs", hdr, body)
		if w.Code != 200 {
			require.GreaterOrEqual(t, w.Code, 400)
			require.Less(t, w.Code, 500, w.Body.String())
			errCode(t, w)
		}
	})
}

func indexCfg() index.Config {
	return index.Config{Line: &index.LineConfig{Token: index.DefaultTokens()}}
}

// FuzzGetLogs feeds arbitrary GetLogs bodies: 200 or 4xx, never 5xx.
func FuzzGetLogs(f *testing.F) {
	f.Add([]byte(`{"from":0,"to":10,"query":"*","line":100,"offset":0,"reverse":true}`))
	f.Add([]byte(`{"from":"1","to":"2","line":"5","reverse":"true","fromNs":999999999}`))
	f.Add([]byte(`{"from":1e3,"to":-1}`))
	f.Add([]byte(`[]`))
	h := newHarness(f)
	h.logs.search = &store.SearchResult{Rows: [][]store.Field{{{Key: "k", Value: "v\x00\xff"}}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		w := h.do(t, "POST", "proj.sluice.test", "/logstores/logs/logs", nil, body)
		if w.Code != 200 {
			require.GreaterOrEqual(t, w.Code, 400)
			require.Less(t, w.Code, 500, w.Body.String())
			return
		}
		var reply struct {
			Data []map[string]string `json:"data"`
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &reply), w.Body.String())
	})
}

func TestGetLogsLZ4Reply(t *testing.T) {
	h := newHarness(t)
	res := &store.SearchResult{}
	for i := range 50 {
		res.Rows = append(res.Rows, []store.Field{{Key: "__time__", Value: strconv.Itoa(1700000000 + i)}, {Key: "msg", Value: "a fairly repetitive log line"}})
	}
	h.logs.search = res
	body := []byte(`{"from":0,"to":10,"query":"*"}`)
	plain := h.do(t, "POST", "proj.sluice.test", "/logstores/logs/logs", nil, body)
	require.Equal(t, 200, plain.Code)
	require.Empty(t, plain.Header().Get(protocol.HeaderCompressType))

	hdr := http.Header{}
	hdr.Set("Accept-Encoding", "lz4")
	w := h.do(t, "POST", "proj.sluice.test", "/logstores/logs/logs", hdr, body)
	require.Equal(t, 200, w.Code)
	require.Equal(t, "lz4", w.Header().Get(protocol.HeaderCompressType))
	raw, err := strconv.Atoi(w.Header().Get(protocol.HeaderBodyRawSize))
	require.NoError(t, err)
	require.Less(t, w.Body.Len(), raw)
	out, err := protocol.Decompress(nil, w.Body.Bytes(), protocol.CompressLZ4, raw, 0)
	require.NoError(t, err)
	require.JSONEq(t, plain.Body.String(), string(out))
}

func TestQueryTimeout(t *testing.T) {
	ms, err := jsonfile.Open(t.TempDir())
	require.NoError(t, err)
	defer ms.Close()
	ctx := context.Background()
	require.NoError(t, ms.PutAccessKey(ctx, meta.AccessKey{ID: "ak", Secret: "sk", Admin: true}))
	require.NoError(t, ms.CreateProject(ctx, meta.Project{Name: "proj"}))
	require.NoError(t, ms.CreateLogstore(ctx, meta.Logstore{Project: "proj", Name: "logs", TTL: 7, ShardCount: 1}))
	require.NoError(t, ms.PutIndex(ctx, "proj", "logs", indexCfg()))
	a, err := api.New(api.Config{Meta: ms, Logs: &memStore{block: true}, Auth: auth.New(ms, auth.Options{}), QueryTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	h := &harness{api: a, signer: protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: "ak", AccessKeySecret: "sk"}}}
	hdr := http.Header{}
	hdr.Set(protocol.HeaderProject, "proj")
	w := h.do(t, "POST", "127.0.0.1", "/logstores/logs/logs", hdr, []byte(`{"from":0,"to":10,"query":"*"}`))
	require.Equal(t, 400, w.Code, w.Body.String())
	require.Equal(t, api.CodeQueryTimeout, errCode(t, w))
	require.Contains(t, w.Body.String(), "50ms")
}
