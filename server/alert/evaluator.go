package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/query"
	"github.com/sluicelog/sluice/server/store"
)

// Statuses of an alert.
const (
	StatusOK       = "ok"
	StatusFiring   = "firing"
	StatusResolved = "resolved" // the evaluation after firing found the condition false
)

// MaxHistory bounds the events kept per alert (newest first).
const MaxHistory = 100

// State is an alert's state document.
type State struct {
	Status         string    `json:"status"`
	LastEvaluation time.Time `json:"lastEvaluation,omitzero"`
	NextEvaluation time.Time `json:"nextEvaluation,omitzero"`
	LastValue      string    `json:"lastValue,omitempty"`
	LastError      string    `json:"lastError,omitempty"`
	// Notified is the status last delivered to every webhook; while it
	// differs from Status the delivery is retried at each evaluation.
	Notified        string  `json:"notified,omitempty"`
	LastNotifyError string  `json:"lastNotifyError,omitempty"`
	Node            string  `json:"node,omitempty"`
	History         []Event `json:"history"`
}

// Event is one evaluation or notification.
type Event struct {
	Time     time.Time `json:"time"`
	Type     string    `json:"type"` // "evaluation" or "notification"
	Status   string    `json:"status"`
	Value    string    `json:"value,omitempty"`
	Error    string    `json:"error,omitempty"`
	URL      string    `json:"url,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
	Node     string    `json:"node,omitempty"`
}

// Searcher runs a query (the store behind GetLogs).
type Searcher interface {
	Search(ctx context.Context, project, logstore string, req store.SearchRequest) (*store.SearchResult, error)
}

// Leaser grants a named lease to one holder at a time (the PostgreSQL
// metadata store implements it; a store that does not is one node's).
type Leaser interface {
	TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
}

// Config configures an Evaluator.
type Config struct {
	Meta meta.Store
	Logs Searcher
	// Node names this server in the lease and in the history.
	Node string
	// Tick is how often due alerts are looked for (5s when 0); an alert
	// runs at most once per its interval.
	Tick time.Duration
	// Attempts per webhook delivery (4 when 0), the first retry after
	// RetryBackoff (1s when 0), doubling.
	Attempts     int
	RetryBackoff time.Duration
	// QueryTimeout bounds one evaluation's query (60s when 0).
	QueryTimeout time.Duration
	Client       *http.Client // 10s timeout when nil
	Logger       *slog.Logger
	Now          func() time.Time
}

// Evaluator runs the alerts of every project.
type Evaluator struct {
	cfg     Config
	mu      sync.Mutex
	running map[string]bool // project/name being evaluated here
	wg      sync.WaitGroup
}

// LeaseName is the lease the evaluating server holds.
const LeaseName = "sluice-alerts"

// New returns an evaluator; Run starts it.
func New(cfg Config) *Evaluator {
	if cfg.Tick <= 0 {
		cfg.Tick = 5 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 4
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = time.Minute
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Evaluator{cfg: cfg, running: map[string]bool{}}
}

// Run evaluates due alerts every Tick until ctx ends, then waits for the
// evaluations under way.
func (e *Evaluator) Run(ctx context.Context) {
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		e.Round(ctx)
		select {
		case <-ctx.Done():
			e.wg.Wait()
			return
		case <-t.C:
		}
	}
}

// Round starts the evaluation of every enabled alert that is due, if
// this server holds the lease. The lease outlives a few ticks, so the
// holder keeps it while it runs and another server takes over within
// that time after it stops; NextEvaluation is written before the query
// runs, so a server taking over does not repeat a period.
func (e *Evaluator) Round(ctx context.Context) {
	if l, ok := e.cfg.Meta.(Leaser); ok {
		held, err := l.TryLease(ctx, LeaseName, e.cfg.Node, max(3*e.cfg.Tick, 15*time.Second))
		if err != nil {
			e.cfg.Logger.Warn("alert lease", "err", err)
			return
		}
		if !held {
			return
		}
	}
	projects, _, err := e.cfg.Meta.ListProjects(ctx, meta.Page{})
	if err != nil {
		e.cfg.Logger.Warn("alerts: list projects", "err", err)
		return
	}
	now := e.cfg.Now()
	for _, p := range projects {
		docs, _, err := e.cfg.Meta.ListDocuments(ctx, p.Name, Kind, meta.Page{})
		if err != nil {
			e.cfg.Logger.Warn("alerts: list", "project", p.Name, "err", err)
			continue
		}
		for _, d := range docs {
			spec, err := Parse(d.Raw)
			if err != nil || !spec.Enabled {
				continue // refused at create; disabled
			}
			key := p.Name + "/" + d.Name
			e.mu.Lock()
			busy := e.running[key]
			e.mu.Unlock()
			if busy {
				continue
			}
			st, err := e.loadState(ctx, p.Name, d.Name)
			if err != nil {
				e.cfg.Logger.Warn("alerts: state", "alert", key, "err", err)
				continue
			}
			if now.Before(st.NextEvaluation) {
				continue
			}
			st.NextEvaluation = now.Add(spec.Interval)
			if err := e.saveState(ctx, p.Name, d.Name, st); err != nil {
				e.cfg.Logger.Warn("alerts: claim", "alert", key, "err", err)
				continue
			}
			e.mu.Lock()
			e.running[key] = true
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer func() { e.mu.Lock(); delete(e.running, key); e.mu.Unlock() }()
				e.evaluate(ctx, p.Name, spec, st, now)
			}()
		}
	}
}

// Wait waits for the evaluations under way.
func (e *Evaluator) Wait() { e.wg.Wait() }

func (e *Evaluator) loadState(ctx context.Context, project, name string) (State, error) {
	d, err := e.cfg.Meta.GetDocument(ctx, project, KindState, name)
	if errors.Is(err, meta.ErrNotFound) {
		return State{Status: StatusOK, Notified: StatusOK}, nil
	}
	if err != nil {
		return State{}, err
	}
	var st State
	err = json.Unmarshal(d.Raw, &st)
	return st, err
}

func (e *Evaluator) saveState(ctx context.Context, project, name string, st State) error {
	if _, err := e.cfg.Meta.GetDocument(ctx, project, Kind, name); err != nil {
		return err // deleted meanwhile: leave no state behind
	}
	if len(st.History) > MaxHistory {
		st.History = st.History[:MaxHistory]
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	now := e.cfg.Now().UTC()
	d := meta.Document{Project: project, Kind: KindState, Name: name, Raw: raw, CreateTime: now, LastModifyTime: now}
	err = e.cfg.Meta.UpdateDocument(ctx, d)
	if errors.Is(err, meta.ErrNotFound) {
		err = e.cfg.Meta.CreateDocument(ctx, d)
	}
	return err
}

func (e *Evaluator) record(st *State, ev Event) {
	ev.Node = e.cfg.Node
	st.History = append([]Event{ev}, st.History...)
}

// evaluate runs one alert's query, updates its status and notifies.
func (e *Evaluator) evaluate(ctx context.Context, project string, spec Spec, st State, now time.Time) {
	log := e.cfg.Logger.With("project", project, "alert", spec.Name)
	firing, value, err := e.check(ctx, project, spec, now)
	st.LastEvaluation, st.Node = now, e.cfg.Node
	if err != nil {
		st.LastError = err.Error()
		e.record(&st, Event{Time: now, Type: "evaluation", Status: st.Status, Error: st.LastError})
		log.Warn("alert evaluation failed", "err", err)
	} else {
		st.LastError, st.LastValue = "", value
		switch {
		case firing:
			st.Status = StatusFiring
		case st.Status == StatusFiring:
			st.Status = StatusResolved
		default:
			st.Status = StatusOK
		}
		e.record(&st, Event{Time: now, Type: "evaluation", Status: st.Status, Value: value})
	}
	e.notify(ctx, project, spec, &st, now)
	if err := e.saveState(ctx, project, spec.Name, st); err != nil && !errors.Is(err, meta.ErrNotFound) {
		log.Warn("alert state not saved", "err", err)
	}
}

// check runs the query over [now-window, now) and compares.
func (e *Evaluator) check(ctx context.Context, project string, spec Spec, now time.Time) (bool, string, error) {
	q, err := query.Parse(spec.Query)
	if err != nil {
		return false, "", err
	}
	text := spec.Query
	if !q.HasSQL {
		text = q.SearchText + " | select count(*) as " + CountColumn
		if q.SearchText == "" {
			text = "*" + text
		}
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.QueryTimeout)
	defer cancel()
	res, err := e.cfg.Logs.Search(ctx, project, spec.Logstore, store.SearchRequest{
		From: now.Add(-spec.Window), To: now, Query: text, Line: 100})
	if err != nil {
		return false, "", fmt.Errorf("query: %w", err)
	}
	c := spec.Condition
	if c.Column == CountColumn && q.HasSQL {
		n := float64(len(res.Rows))
		return c.Holds(n), strconv.Itoa(len(res.Rows)), nil
	}
	var first string
	found := false
	for _, row := range res.Rows {
		for _, f := range row {
			if f.Key != c.Column {
				continue
			}
			found = true
			v, err := strconv.ParseFloat(strings.TrimSpace(f.Value), 64)
			if err != nil {
				if f.Value == "" || strings.EqualFold(f.Value, "null") {
					continue
				}
				return false, f.Value, fmt.Errorf("column %s is %q, not a number", c.Column, f.Value)
			}
			if first == "" {
				first = f.Value
			}
			if c.Holds(v) {
				return true, f.Value, nil
			}
		}
	}
	if !found && len(res.Rows) > 0 {
		cols := make([]string, 0, len(res.Rows[0]))
		for _, f := range res.Rows[0] {
			cols = append(cols, f.Key)
		}
		return false, "", fmt.Errorf("the result has no column %s (columns: %s): fix the condition or the query", c.Column, strings.Join(cols, ", "))
	}
	return false, first, nil
}

// Payload is the JSON body posted to webhooks.
type Payload struct {
	Alert       string    `json:"alert"`
	DisplayName string    `json:"displayName,omitempty"`
	Project     string    `json:"project"`
	Logstore    string    `json:"logstore"`
	Status      string    `json:"status"` // firing or resolved
	Condition   string    `json:"condition"`
	Value       string    `json:"value"`
	Query       string    `json:"query"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	EvaluatedAt time.Time `json:"evaluatedAt"`
}

// notify delivers a status change not yet delivered.
func (e *Evaluator) notify(ctx context.Context, project string, spec Spec, st *State, now time.Time) {
	want := st.Status
	if want == StatusOK || want == st.Notified || (want == StatusResolved && st.Notified == StatusOK) {
		if want == StatusOK {
			st.Notified = StatusOK
		}
		return
	}
	if want == StatusResolved && !spec.SendResolved {
		st.Notified = want
		return
	}
	body, _ := json.Marshal(Payload{Alert: spec.Name, DisplayName: spec.DisplayName, Project: project, Logstore: spec.Logstore,
		Status: want, Condition: spec.Condition.Text, Value: st.LastValue, Query: spec.Query,
		From: now.Add(-spec.Window).UTC(), To: now.UTC(), EvaluatedAt: now.UTC()})
	failed := ""
	for _, w := range spec.Webhooks {
		attempts, err := e.post(ctx, w, body)
		ev := Event{Time: e.cfg.Now(), Type: "notification", Status: want, URL: w.URL, Attempts: attempts}
		if err != nil {
			ev.Error = err.Error()
			failed = w.URL + ": " + err.Error()
			e.cfg.Logger.Warn("alert webhook failed", "project", project, "alert", spec.Name, "url", w.URL, "attempts", attempts, "err", err)
		}
		e.record(st, ev)
	}
	st.LastNotifyError = failed
	if failed == "" {
		st.Notified = want
	}
}

// post sends body to w, retrying with doubling backoff; it returns the
// attempts made.
func (e *Evaluator) post(ctx context.Context, w Webhook, body []byte) (int, error) {
	wait := e.cfg.RetryBackoff
	var err error
	for i := 1; ; i++ {
		if err = e.postOnce(ctx, w, body); err == nil || i == e.cfg.Attempts {
			return i, err
		}
		select {
		case <-ctx.Done():
			return i, err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func (e *Evaluator) postOnce(ctx context.Context, w Webhook, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sluice-alerts")
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	resp, err := e.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	return nil
}
