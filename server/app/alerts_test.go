package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelog/sluice/internal/pgtest"
	"github.com/sluicelog/sluice/server/alert"
	"github.com/sluicelog/sluice/server/app"
	"github.com/sluicelog/sluice/server/app/apptest"
)

// receiver is a webhook endpoint: it records the payloads it accepted and
// answers 500 to the first failFirst requests (or all, with failFirst < 0).
type receiver struct {
	mu        sync.Mutex
	failFirst int
	requests  int
	got       []alert.Payload
	headers   []http.Header
	*httptest.Server
}

func newReceiver(t *testing.T, failFirst int) *receiver {
	r := &receiver{failFirst: failFirst}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.requests++
		if r.failFirst < 0 || r.requests <= r.failFirst {
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
			return
		}
		var p alert.Payload
		if err := json.Unmarshal(body, &p); err != nil || req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		r.got = append(r.got, p)
		r.headers = append(r.headers, req.Header.Clone())
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) payloads() []alert.Payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alert.Payload(nil), r.got...)
}

func testAlert(name, logstore, query, condition, url string) *sls.Alert {
	return &sls.Alert{Name: name, DisplayName: "Alert " + name,
		Configuration: &sls.AlertConfiguration{
			QueryList:        []*sls.AlertQuery{{LogStore: logstore, Query: query, Start: "-15m", End: "now"}},
			Condition:        condition,
			NotificationList: []*sls.Notification{{Type: "Webhook", ServiceUri: url, Headers: map[string]string{"X-Team": "web"}}},
			SendResolved:     true,
		},
		Schedule: &sls.Schedule{Type: "FixedRate", Interval: "1s"}}
}

func alertState(t *testing.T, s *apptest.Server, project, name string) alert.State {
	t.Helper()
	d, err := s.App.Meta().GetDocument(context.Background(), project, alert.KindState, name)
	if err != nil {
		return alert.State{}
	}
	var st alert.State
	require.NoError(t, json.Unmarshal(d.Raw, &st))
	return st
}

func putErrors(t *testing.T, c sls.ClientInterface, project, logstore string, n int) {
	t.Helper()
	lg := &sls.LogGroup{}
	for i := 0; i < n; i++ {
		lg.Logs = append(lg.Logs, &sls.Log{Time: proto.Uint32(uint32(time.Now().Unix())), Contents: []*sls.LogContent{
			{Key: proto.String("status"), Value: proto.String("500")}, {Key: proto.String("method"), Value: proto.String("GET")},
			{Key: proto.String("path"), Value: proto.String("/n/" + strconv.Itoa(i))}}})
	}
	require.NoError(t, c.PutLogs(project, logstore, lg))
}

// An alert fires when its SQL result crosses the threshold, its webhook
// gets the firing (after two refused attempts: retried), then resolved
// once the condition no longer holds; a webhook that always fails is
// shown in the state; disabled, it is said so; bad alerts are refused
// with the field named.
func TestAlertFiresResolvesAndRetries(t *testing.T) {
	s := apptest.Start(t, apptest.Options{Config: app.Config{AlertTick: 20 * time.Millisecond, AlertRetryBackoff: 10 * time.Millisecond}})
	c := s.AdminSDK()
	const project, logstore = "alerts", "web"
	setupProject(t, c, project, logstore)
	putErrors(t, c, project, logstore, 5)

	hook := newReceiver(t, 2)
	a := testAlert("errors", logstore, "status:500 | select count(*) as c", "c > 3", hook.URL)
	require.NoError(t, c.CreateAlert(project, a))
	require.Eventually(t, func() bool { return len(hook.payloads()) >= 1 }, time.Minute, 20*time.Millisecond, "no firing notification")
	p := hook.payloads()[0]
	require.Equal(t, "firing", p.Status)
	require.Equal(t, "errors", p.Alert)
	require.Equal(t, project, p.Project)
	require.Equal(t, "5", p.Value)
	require.Equal(t, "c > 3", p.Condition)
	require.Equal(t, "web", hook.headers[0].Get("X-Team"))
	require.Eventually(t, func() bool { return alertState(t, s, project, "errors").Notified == alert.StatusFiring }, time.Minute, 20*time.Millisecond)
	st := alertState(t, s, project, "errors")
	require.Equal(t, alert.StatusFiring, st.Status)
	var sent *alert.Event
	for i := range st.History {
		if st.History[i].Type == "notification" {
			sent = &st.History[i]
		}
	}
	require.NotNil(t, sent)
	require.Equal(t, 3, sent.Attempts, "two refused attempts, then delivered")
	require.Empty(t, sent.Error)

	// Still over the threshold: no second firing notification.
	n := alertState(t, s, project, "errors")
	require.Eventually(t, func() bool {
		return alertState(t, s, project, "errors").LastEvaluation.After(n.LastEvaluation.Add(time.Second))
	}, time.Minute, 20*time.Millisecond)
	require.Len(t, hook.payloads(), 1)

	// The threshold raised above the count: resolved, and said so.
	a.Configuration.Condition = "c > 100"
	require.NoError(t, c.UpdateAlert(project, a))
	require.Eventually(t, func() bool { return len(hook.payloads()) >= 2 }, time.Minute, 20*time.Millisecond, "no resolved notification")
	require.Equal(t, "resolved", hook.payloads()[1].Status)
	require.Eventually(t, func() bool { return alertState(t, s, project, "errors").Status == alert.StatusOK }, time.Minute, 20*time.Millisecond)

	// A search with no SQL counts matching lines (__count__).
	dead := newReceiver(t, -1)
	require.NoError(t, c.CreateAlert(project, testAlert("any-get", logstore, "method:GET", "__count__ >= 5", dead.URL)))
	require.Eventually(t, func() bool { return alertState(t, s, project, "any-get").LastNotifyError != "" }, time.Minute, 20*time.Millisecond)
	st = alertState(t, s, project, "any-get")
	require.Equal(t, alert.StatusFiring, st.Status)
	require.Equal(t, "5", st.LastValue)
	require.Contains(t, st.LastNotifyError, "HTTP 500")
	require.Equal(t, 4, st.History[0].Attempts)
	require.NotEqual(t, alert.StatusFiring, st.Notified, "an undelivered firing is retried at the next evaluation")

	require.NoError(t, c.DisableAlert(project, "any-get"))
	got, err := c.GetAlert(project, "any-get")
	require.NoError(t, err)
	require.False(t, got.IsEnabled())
	alerts, total, _, err := c.ListAlert(project, "", "", 0, 10)
	require.NoError(t, err)
	require.Equal(t, 2, total)
	require.Equal(t, "any-get", alerts[0].Name)
	require.Equal(t, "errors", alerts[1].Name)

	bad := testAlert("bad", logstore, "status:500 | select count(*) as c", "c is big", hook.URL)
	err = c.CreateAlert(project, bad)
	requireSLSError(t, err, 400, "ParameterInvalid")
	require.ErrorContains(t, err, "condition")
	bad = testAlert("bad", "nope", "*", "__count__ > 1", hook.URL)
	requireSLSError(t, c.CreateAlert(project, bad), 404, "LogStoreNotExist")
	bad = testAlert("bad", logstore, "status:500", "c > 1", hook.URL)
	require.ErrorContains(t, c.CreateAlert(project, bad), "__count__")

	require.NoError(t, c.DeleteAlert(project, "errors"))
	_, err = c.GetAlert(project, "errors")
	requireSLSError(t, err, 404, "JobNotExist")
	require.Equal(t, alert.State{}, alertState(t, s, project, "errors"), "state goes with the alert")
}

// Two servers on one PostgreSQL metadata database evaluate each alert
// once per period: the lease holder runs it, the webhook hears one
// firing, and no two evaluations fall in one interval.
func TestAlertEvaluatedOnceByTwoServers(t *testing.T) {
	dsn := pgtest.DSN(t)
	cfg := app.Config{Meta: dsn, AlertTick: 20 * time.Millisecond, AlertRetryBackoff: 10 * time.Millisecond}
	// a starts first, so it takes the lease (each server looks at once).
	cfg.Node = "a"
	a := apptest.Start(t, apptest.Options{Config: cfg})
	cfg.Node = "b"
	b := apptest.Start(t, apptest.Options{Config: cfg})
	const project, logstore = "shared-alerts", "web"
	// Log storage is each server's own here (shared storage is S3): each
	// would evaluate over its own logs.
	setupProject(t, a.AdminSDK(), project, logstore)
	hook := newReceiver(t, 0)
	al := testAlert("always", logstore, "* | select count(*) as c", "c >= 0", hook.URL)
	require.NoError(t, b.AdminSDK().CreateAlert(project, al))
	require.Eventually(t, func() bool {
		st := alertState(t, a, project, "always")
		evals := 0
		for _, e := range st.History {
			if e.Type == "evaluation" {
				evals++
			}
		}
		return evals >= 4
	}, 2*time.Minute, 50*time.Millisecond)
	require.NoError(t, a.AdminSDK().DisableAlert(project, "always"))
	st := alertState(t, b, project, "always")
	var last time.Time
	nodes := map[string]bool{}
	for i := len(st.History) - 1; i >= 0; i-- {
		e := st.History[i]
		if e.Type != "evaluation" {
			continue
		}
		nodes[e.Node] = true
		if !last.IsZero() {
			require.GreaterOrEqual(t, e.Time.Sub(last), time.Second, "two evaluations within one 1s interval: %v", st.History)
		}
		last = e.Time
	}
	// Without the lease b would evaluate too. a renews every 20ms; the
	// lease lasts 15s.
	require.Equal(t, map[string]bool{"a": true}, nodes, "only the lease holder evaluates")
	require.Len(t, hook.payloads(), 1, "one firing notification, not one per server")
}
