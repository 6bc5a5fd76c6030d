// Package alert evaluates alerts: a saved query over a relative time
// window, run on a fixed schedule, whose result is compared with a
// threshold; a change between firing and resolved is posted to webhooks
// as JSON, retried with backoff.
//
// An alert is stored as the Log Service SDK's Alert JSON (the /jobs
// resource: name, displayName, status ENABLED/DISABLED,
// configuration.queryList, configuration.condition,
// configuration.notificationList, configuration.sendResolved,
// schedule.interval) in the metadata store; Parse reads the part Sluice
// interprets and keeps the rest as sent. Its state and history are a
// second document (KindState), so they are shared by every server on
// the same metadata store. With several servers on one PostgreSQL, the
// holder of a lease in that database evaluates (see Evaluator).
package alert

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/query"
)

// Kinds of the documents alerts are stored as.
const (
	Kind      meta.Kind = "alert"
	KindState meta.Kind = "alert state"
)

// CountColumn in a condition is the number of result rows (for a query
// with no SQL: the number of matching lines).
const CountColumn = "__count__"

// Bounds on what an alert may ask for.
const (
	MinInterval = time.Second
	MaxWindow   = 31 * 24 * time.Hour
	MaxWebhooks = 10
)

// Spec is the part of an alert that Sluice interprets.
type Spec struct {
	Name, DisplayName string
	Enabled           bool
	Logstore          string
	Query             string // as the user wrote it
	Window            time.Duration
	Interval          time.Duration
	Condition         Condition
	Webhooks          []Webhook
	SendResolved      bool
}

// Webhook is one notification target.
type Webhook struct {
	URL     string
	Headers map[string]string
}

// Condition is "<column> <op> <number>": true when the row count
// (CountColumn) or any result row's column compares true.
type Condition struct {
	Text   string
	Column string
	Op     string
	Value  float64
}

// wire is the SDK's Alert JSON, the fields read here.
type wire struct {
	Name          string `json:"name"`
	DisplayName   string `json:"displayName"`
	State         string `json:"state"`
	Status        string `json:"status"`
	Configuration *struct {
		Condition string `json:"condition"`
		QueryList []struct {
			LogStore string `json:"logStore"`
			Store    string `json:"store"`
			Query    string `json:"query"`
			Start    string `json:"start"`
			End      string `json:"end"`
		} `json:"queryList"`
		NotificationList []struct {
			Type       string            `json:"type"`
			ServiceURI string            `json:"serviceUri"`
			Method     string            `json:"method"`
			Headers    map[string]string `json:"headers"`
		} `json:"notificationList"`
		SendResolved bool `json:"sendResolved"`
	} `json:"configuration"`
	Schedule *struct {
		Type     string `json:"type"`
		Interval string `json:"interval"`
	} `json:"schedule"`
}

// Parse reads an alert's JSON; errors name the field and the fix.
func Parse(raw []byte) (Spec, error) {
	var w wire
	if err := json.Unmarshal(raw, &w); err != nil {
		return Spec{}, fmt.Errorf("alert: %w", err)
	}
	s := Spec{Name: w.Name, DisplayName: w.DisplayName, Enabled: true}
	switch strings.ToUpper(w.Status) {
	case "DISABLED":
		s.Enabled = false
	case "", "ENABLED":
		if strings.EqualFold(w.State, "disabled") && w.Status == "" {
			s.Enabled = false
		}
	default:
		return Spec{}, fmt.Errorf("alert status %q: use ENABLED or DISABLED", w.Status)
	}
	c := w.Configuration
	if c == nil {
		return Spec{}, fmt.Errorf("alert configuration is required (queryList, condition, notificationList)")
	}
	if len(c.QueryList) != 1 {
		return Spec{}, fmt.Errorf("alert configuration.queryList has %d queries: Sluice evaluates exactly one", len(c.QueryList))
	}
	ql := c.QueryList[0]
	s.Logstore = ql.LogStore
	if s.Logstore == "" {
		s.Logstore = ql.Store
	}
	if s.Logstore == "" {
		return Spec{}, fmt.Errorf("alert queryList[0].logStore is required")
	}
	s.Query = strings.TrimSpace(ql.Query)
	if s.Query == "" {
		return Spec{}, fmt.Errorf("alert queryList[0].query is required (e.g. `status:500 | select count(*) as c`)")
	}
	q, err := query.Parse(s.Query)
	if err != nil {
		return Spec{}, fmt.Errorf("alert queryList[0].query: %w", err)
	}
	if s.Window, err = parseStart(ql.Start); err != nil {
		return Spec{}, err
	}
	if e := strings.TrimSpace(strings.ToLower(ql.End)); e != "" && e != "now" && e != "0s" && e != "-0s" {
		return Spec{}, fmt.Errorf("alert queryList[0].end %q: only \"now\" is supported (the window is start..now)", ql.End)
	}
	if s.Condition, err = ParseCondition(c.Condition); err != nil {
		return Spec{}, err
	}
	if !q.HasSQL && s.Condition.Column != CountColumn {
		return Spec{}, fmt.Errorf("alert condition %q: a query with no SQL has one column, %s (the matching lines); add `| select ...` to compare other columns", c.Condition, CountColumn)
	}
	for i, n := range c.NotificationList {
		if !strings.EqualFold(n.Type, "webhook") {
			return Spec{}, fmt.Errorf("alert notificationList[%d].type %q: Sluice sends Webhook notifications only", i, n.Type)
		}
		if m := strings.ToUpper(n.Method); m != "" && m != "POST" {
			return Spec{}, fmt.Errorf("alert notificationList[%d].method %q: webhooks are sent as POST", i, n.Method)
		}
		if !strings.HasPrefix(n.ServiceURI, "http://") && !strings.HasPrefix(n.ServiceURI, "https://") {
			return Spec{}, fmt.Errorf("alert notificationList[%d].serviceUri %q must be an http:// or https:// URL", i, n.ServiceURI)
		}
		s.Webhooks = append(s.Webhooks, Webhook{URL: n.ServiceURI, Headers: n.Headers})
	}
	if len(s.Webhooks) > MaxWebhooks {
		return Spec{}, fmt.Errorf("alert has %d webhooks: at most %d", len(s.Webhooks), MaxWebhooks)
	}
	s.SendResolved = c.SendResolved
	if w.Schedule == nil || w.Schedule.Interval == "" {
		return Spec{}, fmt.Errorf("alert schedule.interval is required (e.g. {\"type\": \"FixedRate\", \"interval\": \"1m\"})")
	}
	if t := w.Schedule.Type; t != "" && !strings.EqualFold(t, "FixedRate") {
		return Spec{}, fmt.Errorf("alert schedule.type %q: only FixedRate is supported", t)
	}
	if s.Interval, err = parseDuration(w.Schedule.Interval); err != nil || s.Interval < MinInterval {
		return Spec{}, fmt.Errorf("alert schedule.interval %q must be a duration of at least %s such as 1m or 30s", w.Schedule.Interval, MinInterval)
	}
	return s, nil
}

// parseStart reads a relative start ("-15m", "15m", "-1h", "-1d").
func parseStart(v string) (time.Duration, error) {
	d, err := parseDuration(strings.TrimPrefix(strings.TrimSpace(v), "-"))
	if err != nil || d <= 0 || d > MaxWindow {
		return 0, fmt.Errorf("alert queryList[0].start %q must be a relative time such as -15m, -1h or -1d (at most 31 days)", v)
	}
	return d, nil
}

// parseDuration is time.ParseDuration plus a "d" (day) unit.
func parseDuration(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

var ops = []string{">=", "<=", "==", "!=", ">", "<", "="}

// ParseCondition reads "<column> <op> <number>"; the column may be
// written $0.column (the SDK's form for the first query).
func ParseCondition(text string) (Condition, error) {
	t := strings.TrimSpace(text)
	for _, op := range ops {
		i := strings.Index(t, op)
		if i < 0 {
			continue
		}
		col := strings.TrimSpace(t[:i])
		col = strings.TrimPrefix(col, "$0.")
		col = strings.Trim(col, "\"")
		num := strings.TrimSpace(t[i+len(op):])
		v, err := strconv.ParseFloat(num, 64)
		if col == "" || err != nil || math.IsNaN(v) {
			break
		}
		if op == "=" {
			op = "=="
		}
		return Condition{Text: t, Column: col, Op: op, Value: v}, nil
	}
	return Condition{}, fmt.Errorf("alert condition %q must be `<column> <op> <number>` (op one of > >= < <= == !=), e.g. `c > 100` or `%s > 0`", text, CountColumn)
}

// Holds compares v with the threshold.
func (c Condition) Holds(v float64) bool {
	switch c.Op {
	case ">":
		return v > c.Value
	case ">=":
		return v >= c.Value
	case "<":
		return v < c.Value
	case "<=":
		return v <= c.Value
	case "==":
		return v == c.Value
	default:
		return v != c.Value
	}
}
