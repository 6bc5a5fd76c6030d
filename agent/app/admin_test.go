package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/supervisor"
)

// failingFactory refuses every config, so status has a failed config to
// report.
var failingFactory = supervisor.FactoryFunc(func(data []byte) (string, supervisor.Pipeline, error) {
	return "bad", nil, errors.New(`unknown logType "foo"`)
})

func TestAdminEndpoints(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	a, err := supervisor.New(supervisor.Options{ConfigDir: dir, Factory: failingFactory, Registerer: reg, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	srv := httptest.NewServer(AdminHandler(a, reg))
	defer srv.Close()

	// Before the first scan the agent is not live yet.
	resp, err := http.Get(srv.URL + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"configName":"bad"}`), 0o644))
	a.Sync(context.Background())

	resp, err = http.Get(srv.URL + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	st, err := FetchStatus(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)
	require.True(t, st.Healthy)
	require.Len(t, st.Configs, 1)
	require.Equal(t, supervisor.StateFailed, st.Configs[0].State)
	require.Contains(t, st.Configs[0].Message, `unknown logType "foo"`)

	resp, err = http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Contains(t, string(body), `sluice_agent_configs{state="failed"} 1`)
}

func TestStatusReportsLagBufferAndCentralConfig(t *testing.T) {
	reg := prometheus.NewRegistry()
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_file_lag_bytes"}, []string{"config", "path"})
	pending := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_buffer_pending_bytes"})
	lost := prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_buffer_corrupt_bytes_total"})
	reg.MustRegister(lag, pending, lost)
	lag.WithLabelValues("a", "/var/log/app/a.log").Set(3 << 20)
	lag.WithLabelValues("a", "/var/log/app/b.log").Set(512)
	pending.Set(5 << 20)

	a, err := supervisor.New(supervisor.Options{ConfigDir: t.TempDir(), Factory: failingFactory, Registerer: reg, Gatherer: reg})
	require.NoError(t, err)
	a.SetCentralStatus(func() supervisor.CentralStatus {
		return supervisor.CentralStatus{Server: "http://sluice:8080", LastError: "connection refused"}
	})
	a.Sync(context.Background())
	st := a.Status()
	require.NotNil(t, st.Collection)
	require.Equal(t, float64(3<<20+512), st.Collection.LagBytes)
	require.Equal(t, "/var/log/app/a.log", st.Collection.Lagging[0].Path)
	require.Equal(t, float64(5<<20), st.Collection.BufferPendingBytes)

	var b strings.Builder
	WriteStatusText(&b, st)
	out := b.String()
	require.Contains(t, out, "3.0 MiB unread in watched files, 5.0 MiB waiting in the disk buffer")
	require.Contains(t, out, "behind: 3.0 MiB /var/log/app/a.log")
	require.Contains(t, out, "FAILING: connection refused (cached configs keep collecting)")
	require.NotContains(t, out, "LOST")

	lost.Add(100)
	b.Reset()
	WriteStatusText(&b, a.Status())
	require.Contains(t, b.String(), "LOST: 100 B")
}

func TestStatusTextShowsConfigWarnings(t *testing.T) {
	var b strings.Builder
	WriteStatusText(&b, supervisor.Status{Configs: []supervisor.ConfigStatus{{Name: "pvc", Path: "/c/pvc.json", State: supervisor.StateRunning,
		Warnings: []string{"topicFormat matches none of the 4 files collected (e.g. /var/log/nginx/x/access.log)"}}}})
	require.Contains(t, b.String(), "running  pvc (/c/pvc.json")
	require.Contains(t, b.String(), "warning: topicFormat matches none of the 4 files collected")
	require.NotContains(t, b.String(), "failed", "a warning is not a failure")
}

// Another program on the status port (the sluice-server, a web server) is
// named as such, not shown as its 404 page.
func TestFetchStatusFromAnotherProgram(t *testing.T) {
	for _, h := range []http.HandlerFunc{
		func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "<html>File not found</html>", http.StatusNotFound)
		},
		func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "<html>welcome</html>") },
	} {
		srv := httptest.NewServer(h)
		_, err := FetchStatus(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
		srv.Close()
		require.ErrorContains(t, err, "answers, but not as sluice-agent")
		require.ErrorContains(t, err, "another program holds that port")
		require.NotContains(t, err.Error(), "<html>")
	}
}
