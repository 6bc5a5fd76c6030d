package app_test

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
)

// GetHistograms on the path the sls20201230 SDKs use
// (/logstores/{ls}/index?type=histogram), ListTopics (type=topic, paged
// by token) and GetProjectLogs (/logs, SQL naming the logstore).
func TestTopicsHistogramsProjectLogs(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	const project, logstore = "read-apis", "access"
	setupProject(t, c, project, logstore)
	now := time.Now()
	for _, topic := range []string{"b", "a", "c", "a", ""} {
		require.NoError(t, c.PutLogs(project, logstore, sdkGroup(topic, now, []string{"status", "200", "method", "GET"})))
	}

	get := func(path string, v any) {
		t.Helper()
		resp, body := e.raw("GET", project, path, nil, nil, admin(), time.Now())
		require.Equal(t, 200, resp.StatusCode, string(body))
		require.NoError(t, json.Unmarshal(body, v), string(body))
	}
	var hist []struct {
		From, To, Count int64
		Progress        string
	}
	q := url.Values{"type": {"histogram"}, "from": {"0"}, "to": {"4102444800"}, "query": {"method:GET"}}
	get("/logstores/"+logstore+"/index?"+q.Encode(), &hist)
	var total int64
	for _, h := range hist {
		total += h.Count
		require.Equal(t, "Complete", h.Progress)
	}
	require.EqualValues(t, 5, total)
	// Without type it is still GetIndex.
	var idx sls.Index
	get("/logstores/"+logstore+"/index", &idx)
	require.Equal(t, "long", idx.Keys["status"].Type)

	var topics []string
	get("/logstores/"+logstore+"?type=topic", &topics)
	require.Equal(t, []string{"", "a", "b", "c"}, topics)
	resp, body := e.raw("GET", project, "/logstores/"+logstore+"?type=topic&line=2", nil, nil, admin(), time.Now())
	require.Equal(t, 200, resp.StatusCode)
	require.NoError(t, json.Unmarshal(body, &topics))
	require.Equal(t, []string{"", "a"}, topics)
	require.Equal(t, "a", resp.Header.Get("x-log-nexttoken"))
	get("/logstores/"+logstore+"?type=topic&line=2&token=a", &topics)
	require.Equal(t, []string{"b", "c"}, topics)

	var rows []map[string]string
	sql := "select __topic__ as t, count(*) as n from " + logstore + " where __time__ > 0 group by t order by t"
	get("/logs?query="+url.QueryEscape(sql), &rows)
	require.Equal(t, []map[string]string{{"t": "", "n": "1"}, {"t": "a", "n": "2"}, {"t": "b", "n": "1"}, {"t": "c", "n": "1"}}, rows)
	resp, body = e.raw("GET", project, "/logs?query="+url.QueryEscape("select 1 from nowhere"), nil, nil, admin(), time.Now())
	requireRawError(t, resp, body, 400, protocol.CodeParameterInvalid)
}
