package console_test

import (
	"fmt"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/server/app"
	"github.com/sluicelog/sluice/server/app/apptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(apptest.IdleConns(),
		// The SDK's retry helper keeps background goroutines.
		goleak.IgnoreAnyFunction("github.com/aliyun/aliyun-log-go-sdk.(*defaultSignerV1).Sign"))...)
}

const (
	adminID     = apptest.AdminID
	adminSecret = apptest.AdminSecret
)

// env is a real sluice-server (JSON metadata, DuckDB log store, console)
// on 127.0.0.1:0.
type env struct {
	*apptest.Server
	t    testing.TB
	base string // http://127.0.0.1:port
}

func start(t testing.TB) *env {
	t.Helper()
	// Alerts are looked for often, so one fires soon after it is made.
	srv := apptest.Start(t, apptest.Options{Config: app.Config{AlertTick: 100 * time.Millisecond, AlertRetryBackoff: 10 * time.Millisecond}})
	return &env{Server: srv, t: t, base: srv.URL()}
}

// accessLog is one synthetic web access log.
type accessLog struct {
	t                    time.Time
	method, path, status string
	latency              int
}

// ingest writes logs through the SDK's PutLogs (lz4, signed), tagged like an
// agent would tag them.
func (e *env) ingest(project, logstore string, logs []accessLog) {
	e.t.Helper()
	c := e.SDK(adminID, adminSecret)
	for len(logs) > 0 {
		n := min(len(logs), 500)
		g := &sls.LogGroup{Topic: ptr("web"), Source: ptr("10.0.0.5"),
			LogTags: []*sls.LogTag{{Key: ptr("__path__"), Value: ptr("/var/log/nginx/access.log")}}}
		for _, l := range logs[:n] {
			g.Logs = append(g.Logs, &sls.Log{Time: ptr(uint32(l.t.Unix())), Contents: []*sls.LogContent{
				{Key: ptr("method"), Value: ptr(l.method)},
				{Key: ptr("path"), Value: ptr(l.path)},
				{Key: ptr("status"), Value: ptr(l.status)},
				{Key: ptr("latency"), Value: ptr(fmt.Sprint(l.latency))},
			}})
		}
		require.NoError(e.t, c.PutLogs(project, logstore, g))
		logs = logs[n:]
	}
}

func ptr[T any](v T) *T { return &v }

// sampleLogs returns n logs, one every step back from now: every 7th a
// 500, every 11th a 404, the rest 200.
func sampleLogs(now time.Time, n int, step time.Duration) []accessLog {
	paths := []string{"/api/users", "/api/orders", "/healthz", "/api/cart"}
	out := make([]accessLog, n)
	for i := range out {
		st := "200"
		switch {
		case i%7 == 0:
			st = "500"
		case i%11 == 0:
			st = "404"
		}
		m := "GET"
		if i%3 == 0 {
			m = "POST"
		}
		out[i] = accessLog{t: now.Add(-time.Duration(i) * step), method: m, path: paths[i%len(paths)], status: st, latency: 5 + i%50}
	}
	return out
}

func countStatus(logs []accessLog, st string) int {
	n := 0
	for _, l := range logs {
		if l.status == st {
			n++
		}
	}
	return n
}

// setup creates a project and a logstore indexed like the browser test's
// index editor leaves it (full text; status/latency long, method/path
// text; all with analytics).
func (e *env) setup(project, logstore string) {
	e.t.Helper()
	c := e.SDK(adminID, adminSecret)
	_, err := c.CreateProject(project, "")
	require.NoError(e.t, err)
	require.NoError(e.t, c.CreateLogStore(project, logstore, 7, 2, false, 64))
	tokens := []string{",", " ", "'", "\"", ";", "=", "(", ")", "[", "]", "{", "}", "?", "@", "&", "<", ">", "/", ":", "\n", "\t", "\r"}
	keys := map[string]sls.IndexKey{}
	for k, typ := range map[string]string{"status": "long", "latency": "long", "method": "text", "path": "text"} {
		ik := sls.IndexKey{Type: typ, DocValue: true}
		if typ == "text" {
			ik.Token = tokens
		}
		keys[k] = ik
	}
	require.NoError(e.t, c.CreateIndex(project, logstore, sls.Index{Keys: keys, Line: &sls.IndexLine{Token: tokens}}))
}
