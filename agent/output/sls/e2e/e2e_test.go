// Package e2e runs the Log Service output against the real sluice-server
// (server/app: API, auth, JSON metadata, DuckDB store) and reads the logs
// back with the Go SDK. It lives in its own package so that the output's
// unit tests do not link DuckDB.
package e2e_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/agent/output/sls"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/server/app"
	"github.com/sluicelog/sluice/server/app/apptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, apptest.IdleConns()...)
}

const (
	adminID     = apptest.AdminID
	adminSecret = apptest.AdminSecret
	project     = "agent-e2e"
	logstore    = "app-logs"
)

func setup(t *testing.T, c sdk.ClientInterface) {
	t.Helper()
	_, err := c.CreateProject(project, "agent e2e")
	require.NoError(t, err)
	require.NoError(t, c.CreateLogStore(project, logstore, 7, 2, false, 0))
	require.NoError(t, c.CreateIndex(project, logstore, sdk.Index{
		Line: &sdk.IndexLine{Token: []string{" ", ",", ";", "=", "/", ":"}},
		Keys: map[string]sdk.IndexKey{
			"status":           {Type: "long", DocValue: true},
			"content":          {Type: "text", DocValue: true, Token: []string{" "}},
			"__tag__:__path__": {Type: "text", DocValue: true, Token: []string{"/"}},
		},
	}))
}

type acks struct {
	mu   sync.Mutex
	errs []error
}

func (a *acks) ack() pipeline.Ack {
	return pipeline.AckFunc(func(err error) {
		a.mu.Lock()
		a.errs = append(a.errs, err)
		a.mu.Unlock()
	})
}

func (a *acks) wait(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.errs) >= n
	}, 30*time.Second, 10*time.Millisecond)
	a.mu.Lock()
	defer a.mu.Unlock()
	require.Len(t, a.errs, n)
	for _, err := range a.errs {
		require.NoError(t, err)
	}
}

func consume(t *testing.T, o *sls.Output, a *acks, path string, first, n int, at time.Time) {
	t.Helper()
	b := pipeline.NewBatch()
	b.Topic = "e2e"
	b.AddTag("__path__", path)
	for i := first; i < first+n; i++ {
		b.BeginEvent(uint32(at.Unix()), 0)
		b.AddField("content", fmt.Appendf(nil, "line %05d", i))
		b.AddField("status", []byte([]string{"200", "500"}[i%2]))
		b.EndEvent()
	}
	b.Ack = a.ack()
	require.NoError(t, o.Consume(context.Background(), b))
}

func queryAll(t *testing.T, c sdk.ClientInterface, at time.Time, query string) []map[string]string {
	t.Helper()
	var out []map[string]string
	for offset := int64(0); ; offset += 100 {
		r, err := c.GetLogsV2(project, logstore, &sdk.GetLogRequest{From: at.Add(-time.Hour).Unix(), To: at.Add(time.Hour).Unix(),
			Query: query, Lines: 100, Offset: offset})
		require.NoError(t, err)
		out = append(out, r.Logs...)
		if len(r.Logs) < 100 {
			return out
		}
	}
}

// count returns the logs matching search and how many distinct contents
// they have (SQL, so no paging is involved).
func count(t *testing.T, c sdk.ClientInterface, at time.Time, search string) (n, distinct string) {
	t.Helper()
	r, err := c.GetLogsV3(project, logstore, &sdk.GetLogRequest{From: at.Add(-time.Hour).Unix(), To: at.Add(time.Hour).Unix(),
		Query: search + " | select count(1) as n, count(distinct content) as d"})
	if err != nil || len(r.Logs) != 1 {
		return "", fmt.Sprint(err)
	}
	return r.Logs[0]["n"], r.Logs[0]["d"]
}

func TestOutputToRealServer(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{})
	c := srv.AdminSDK()
	setup(t, c)

	now := time.Now()
	for _, v := range []struct {
		name string
		mod  func(*sls.Config)
	}{
		{"v1-lz4", func(*sls.Config) {}},
		{"v4-zstd", func(c *sls.Config) { c.SignatureVersion, c.Region, c.Compression = 4, "cn-hangzhou", "zstd" }},
	} {
		cfg := sls.Config{Endpoint: srv.Endpoint(), Project: project, Logstore: logstore,
			AccessKeyID: adminID, AccessKeySecret: adminSecret, Source: "10.9.8.7",
			FlushInterval: 50 * time.Millisecond, DeadLetterDir: filepath.Join(t.TempDir(), "dead")}
		v.mod(&cfg)
		otr := srv.Transport()
		o, err := sls.New(cfg, sls.Settings{Transport: otr})
		require.NoError(t, err)
		require.NoError(t, o.Start(context.Background()))
		a := &acks{}
		for i := range 10 {
			consume(t, o, a, "/var/log/"+v.name+".log", i*50, 50, now)
		}
		a.wait(t, 10)
		require.NoError(t, o.Shutdown(context.Background()))
		otr.CloseIdleConnections()
	}

	for _, name := range []string{"v1-lz4", "v4-zstd"} {
		search := fmt.Sprintf(`__tag__:__path__:"/var/log/%s.log"`, name)
		n, d := count(t, c, now, search)
		require.Equal(t, "500", n, name)
		require.Equal(t, "500", d, name)
		logs := queryAll(t, c, now, search)
		require.Len(t, logs, 500, name)
		for _, l := range logs {
			require.Equal(t, "e2e", l["__topic__"])
			require.Equal(t, "10.9.8.7", l["__source__"])
			require.Regexp(t, `^[0-9A-F]{16}-[0-9A-F]+$`, l["__tag__:__pack_id__"])
		}
	}
	n, _ := count(t, c, now, "status:500")
	require.Equal(t, "500", n)
}

// TestServerRestartWithDiskBuffer: the server goes away, the output keeps
// accepting batches into its disk buffer; the server comes back on the same
// address and data directory and receives everything.
func TestServerRestartWithDiskBuffer(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{})
	c := srv.AdminSDK()
	setup(t, c)

	cfg := sls.Config{Endpoint: srv.Endpoint(), Project: project, Logstore: logstore,
		AccessKeyID: adminID, AccessKeySecret: adminSecret, FlushInterval: 20 * time.Millisecond,
		RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, AttemptsBeforeBuffer: 1,
		BufferDir: filepath.Join(t.TempDir(), "buffer")}
	otr := srv.Transport()
	o, err := sls.New(cfg, sls.Settings{Transport: otr, Logger: slog.New(slog.NewTextHandler(tlog{t}, nil))})
	require.NoError(t, err)
	require.NoError(t, o.Start(context.Background()))

	now := time.Now()
	a := &acks{}
	consume(t, o, a, "/before.log", 0, 100, now)
	a.wait(t, 1)

	srv.Stop()
	otr.CloseIdleConnections()
	for i := range 5 {
		consume(t, o, a, "/during.log", i*100, 100, now)
	}
	a.wait(t, 6) // buffered on disk while the server is down

	// Clients made before reach the new server: same address.
	apptest.Start(t, apptest.Options{Config: app.Config{Listen: srv.Addr(), DataDir: srv.DataDir()}})
	require.Eventually(t, func() bool {
		n, _ := count(t, c, now, `__tag__:__path__:"/during.log"`)
		return n == "500"
	}, 30*time.Second, 100*time.Millisecond)
	require.NoError(t, o.Shutdown(context.Background()))
	_, d := count(t, c, now, `__tag__:__path__:"/during.log"`)
	require.Equal(t, "500", d, "every buffered line, once")
	n, _ := count(t, c, now, `__tag__:__path__:"/before.log"`)
	require.Equal(t, "100", n)
}

type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
