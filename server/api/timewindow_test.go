package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/api"
	"github.com/sluicelog/sluice/server/auth"
	"github.com/sluicelog/sluice/server/meta"
)

// PutLogs takes logs from the logstore's first retained day up to 15
// minutes ahead; a request with any log outside, or spanning more days
// than allowed, is refused whole with InvalidTimestamp (nothing stored),
// and its logs are counted by reason.
func TestPutLogsTimeWindow(t *testing.T) {
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	a, err := api.New(api.Config{BaseDomain: "sluice.test", Meta: h.meta, Logs: h.logs, Auth: auth.New(h.meta, auth.Options{}),
		Registerer: reg, MaxWriteDays: 3})
	require.NoError(t, err)
	h.api = a
	ctx := context.Background()
	require.NoError(t, h.meta.CreateLogstore(ctx, meta.Logstore{Project: "proj", Name: "forever", TTL: 3650, ShardCount: 1}))

	now := time.Now()
	put := func(logstore string, times ...time.Time) (int, protocol.ErrorCode, string) {
		t.Helper()
		g := protocol.LogGroup{}
		for _, tm := range times {
			g.Logs = append(g.Logs, protocol.Log{Time: uint32(tm.Unix()), Contents: []protocol.LogContent{{Key: "k", Value: "v"}}})
		}
		w := h.do(t, "POST", "proj.sluice.test", "/logstores/"+logstore+"/shards/lb", http.Header{}, protocol.AppendLogGroup(nil, &g))
		if w.Code == 200 {
			return 200, "", ""
		}
		return w.Code, errCode(t, w), w.Body.String()
	}
	day := 24 * time.Hour
	// In the window: now, 14 minutes ahead, the first kept day of a 7-day ttl.
	firstKept := time.Unix((now.Unix()/86400-6)*86400, 0)
	code, _, body := put("logs", now, now.Add(14*time.Minute), firstKept)
	require.Equal(t, 200, code, body)
	stored := h.logs.logs

	code, ec, body := put("logs", now, now.Add(20*time.Minute))
	require.Equal(t, 400, code)
	require.Equal(t, protocol.CodeInvalidTimestamp, ec)
	require.Contains(t, body, "log 1 of group 0")
	require.Contains(t, body, "more than 15m0s ahead")

	code, ec, body = put("logs", now, firstKept.Add(-time.Second))
	require.Equal(t, 400, code)
	require.Equal(t, protocol.CodeInvalidTimestamp, ec)
	require.Contains(t, body, `the first day logstore \"logs\" keeps (ttl 7 days)`)

	// A ttl of 3650 days keeps everything: no past bound, but still at
	// most MaxWriteDays distinct days per request.
	code, _, body = put("forever", time.Unix(1000, 0), time.Unix(90000, 0), time.Unix(180000, 0), now)
	require.Equal(t, 400, code)
	require.Contains(t, body, "span more than 3 distinct days")
	code, _, body = put("forever", time.Unix(1000, 0), time.Unix(90000, 0), now, now.Add(-day))
	require.Equal(t, 400, code, body)
	code, _, body = put("forever", time.Unix(1000, 0), time.Unix(90000, 0), now, now, time.Unix(1000, 0))
	require.Equal(t, 200, code, body)

	require.Equal(t, stored+5, h.logs.logs, "refused requests stored nothing")
	require.Equal(t, 2.0, gathered(t, reg, "sluice_api_out_of_window_logs_total", "reason", "too_new"))
	require.Equal(t, 2.0, gathered(t, reg, "sluice_api_out_of_window_logs_total", "reason", "too_old"))
	require.Equal(t, 8.0, gathered(t, reg, "sluice_api_out_of_window_logs_total", "reason", "too_many_days"))

	// 20,000 logs on 20,000 days (the probe that had made 20,000 segments).
	g := protocol.LogGroup{}
	for i := range 20000 {
		g.Logs = append(g.Logs, protocol.Log{Time: uint32(now.Add(-time.Duration(i) * day).Unix()), Contents: []protocol.LogContent{{Key: "k", Value: "v"}}})
	}
	w := h.do(t, "POST", "proj.sluice.test", "/logstores/forever/shards/lb", http.Header{}, protocol.AppendLogGroup(nil, &g))
	require.Equal(t, 400, w.Code)
	require.Equal(t, protocol.CodeInvalidTimestamp, errCode(t, w))

	// Web tracking (unsigned) takes __time__ from the client: the same
	// window holds.
	require.NoError(t, h.meta.UpdateLogstore(ctx, meta.Logstore{Project: "proj", Name: "forever", TTL: 3650, ShardCount: 1, EnableTracking: true}))
	track := func(times ...int64) *httptest.ResponseRecorder {
		var logs []string
		for _, tm := range times {
			logs = append(logs, fmt.Sprintf(`{"__time__":"%d","k":"v"}`, tm))
		}
		r := httptest.NewRequest("POST", "http://proj.sluice.test/logstores/forever/track", strings.NewReader(`{"__logs__":[`+strings.Join(logs, ",")+`]}`))
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.api.ServeHTTP(rec, r)
		return rec
	}
	before := h.logs.logs
	var days []int64
	for i := range 4 {
		days = append(days, now.Add(-time.Duration(i)*day).Unix())
	}
	w = track(days...)
	require.Equal(t, 400, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), "span more than 3 distinct days")
	w = track(now.Add(time.Hour).Unix())
	require.Equal(t, 400, w.Code, w.Body.String())
	require.Equal(t, protocol.CodeInvalidTimestamp, errCode(t, w))
	require.Equal(t, before, h.logs.logs, "refused tracking writes stored nothing")
	w = track(now.Unix())
	require.Equal(t, 200, w.Code, w.Body.String())
	require.Equal(t, before+1, h.logs.logs)
}

// gathered is the value of the counter or gauge name{label=value} in reg.
func gathered(t *testing.T, reg prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
