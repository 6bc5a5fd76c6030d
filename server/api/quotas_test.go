package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/api"
	"github.com/sluicelog/sluice/server/auth"
)

// Projects, logstores per project and index keys have quotas, each
// refused with its own code and a message naming the flag.
func TestQuotas(t *testing.T) {
	h := newHarness(t) // one project "proj" with one logstore "logs"
	a, err := api.New(api.Config{BaseDomain: "sluice.test", Meta: h.meta, Logs: h.logs, Auth: auth.New(h.meta, auth.Options{}),
		Registerer: prometheus.NewRegistry(), Quotas: api.Quotas{MaxProjects: 2, MaxLogstoresPerProject: 2, MaxIndexKeys: 3}})
	require.NoError(t, err)
	h.api = a
	json := http.Header{"Content-Type": {"application/json"}}

	w := h.do(t, "POST", "second.sluice.test", "/", json, []byte(`{"projectName":"second"}`))
	require.Equal(t, 200, w.Code, w.Body.String())
	w = h.do(t, "POST", "third.sluice.test", "/", json, []byte(`{"projectName":"third"}`))
	require.Equal(t, 400, w.Code)
	require.Equal(t, api.CodeProjectQuotaExceed, errCode(t, w))
	require.Contains(t, w.Body.String(), "--max-projects 2")

	ls := func(name string) []byte {
		return []byte(fmt.Sprintf(`{"logstoreName":%q,"ttl":7,"shardCount":1}`, name))
	}
	w = h.do(t, "POST", "proj.sluice.test", "/logstores", json, ls("two"))
	require.Equal(t, 200, w.Code, w.Body.String())
	w = h.do(t, "POST", "proj.sluice.test", "/logstores", json, ls("three"))
	require.Equal(t, 400, w.Code)
	require.Equal(t, api.CodeLogStoreQuotaExceed, errCode(t, w))
	require.Contains(t, w.Body.String(), `project \"proj\" has 2 logstores`)
	w = h.do(t, "POST", "second.sluice.test", "/logstores", json, ls("other"))
	require.Equal(t, 200, w.Code, "the quota is per project: %s", w.Body.String())

	idx := `{"line":{"token":[" "]},"keys":{"a":{"type":"text"},"b":{"type":"long"},"j":{"type":"json","json_keys":{"x":{"type":"text"},"y":{"type":"long"}}}}}`
	w = h.do(t, "POST", "proj.sluice.test", "/logstores/two/index", json, []byte(idx))
	require.Equal(t, 400, w.Code)
	require.Equal(t, api.CodeIndexKeyQuotaExceed, errCode(t, w))
	require.Contains(t, w.Body.String(), "the index has 5 keys")
	w = h.do(t, "POST", "proj.sluice.test", "/logstores/two/index", json, []byte(`{"line":{"token":[" "]},"keys":{"a":{"type":"text"},"b":{"type":"long"}}}`))
	require.Equal(t, 200, w.Code, w.Body.String())
}

// /metrics needs the token when one is configured.
func TestMetricsToken(t *testing.T) {
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	a, err := api.New(api.Config{BaseDomain: "sluice.test", Meta: h.meta, Logs: h.logs, Auth: auth.New(h.meta, auth.Options{}),
		Registerer: reg, Gatherer: reg, MetricsToken: "scrape-token-0123456789"})
	require.NoError(t, err)
	get := func(auth string) *httptest.ResponseRecorder {
		r, _ := http.NewRequest("GET", "http://sluice.test/metrics", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		return w
	}
	require.Equal(t, 401, get("").Code)
	require.Equal(t, 401, get("Bearer wrong").Code)
	w := get("Bearer scrape-token-0123456789")
	require.Equal(t, 200, w.Code)
	require.Contains(t, w.Body.String(), "sluice_api_body_budget_bytes")
}
