package duckdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/server/query"
	"github.com/sluicelog/sluice/server/store"
)

// Query bounds: admission (how many queries run, per project and in all,
// and how long one waits for its turn), the deadline and its interrupt,
// and the translation of DuckDB's errors into what a client may see.

// admission hands out query slots: at most max queries run, at most
// perProject of them for one project (so one tenant cannot hold every
// slot), and at most maxQueued wait for one, each for up to wait.
type admission struct {
	max, perProject, maxQueued int
	wait                       time.Duration

	mu      sync.Mutex
	running int
	byProj  map[string]int
	slots   map[*slot]struct{} // the running queries
	waiting int
	freed   chan struct{} // closed (and replaced) when a slot frees or the lane changes

	// lane is the query running again alone after running out of memory
	// beside other projects' queries (rerunAlone); while it is set no
	// query is admitted. alone records, per project, its last run in the
	// lane: a project gets one per memoryRetryEvery.
	lane  *slot
	alone map[string]aloneRun

	m *metrics
}

// aloneRun is a project's last run in the lane: when, and whether its
// query ran out of memory even alone.
type aloneRun struct {
	at     time.Time
	tooBig bool
}

// memoryRetryEvery is how often one project's query may run alone (in the
// lane, every other query held back) after running out of memory beside
// other projects' queries. It bounds what a tenant sending queries too big
// for the server can take from the others: one such run, then for this
// long its out-of-memory errors are answered at once.
const memoryRetryEvery = time.Minute

func newAdmission(max, perProject, maxQueued int, wait time.Duration, m *metrics) *admission {
	return &admission{max: max, perProject: perProject, maxQueued: maxQueued, wait: wait,
		byProj: map[string]int{}, slots: map[*slot]struct{}{}, freed: make(chan struct{}),
		alone: map[string]aloneRun{}, m: m}
}

// slot is one running query's place. DuckDB's memory (memory_limit and the
// memory guard) is one pool for every query and keeps no account per
// query, so a query that runs out of it may have been starved by others.
// shared records whether a query of another project ran at any moment
// alongside this one: such a query is run again alone (rerunAlone) before
// its out-of-memory error is believed.
type slot struct {
	project string
	shared  atomic.Bool
}

// acquire takes a slot for project, waiting up to a.wait. It fails with
// store.ErrOverloaded (a 503 telling the client to retry) when the queue
// is full or the wait ran out, and with ctx.Err() when ctx ends first.
func (a *admission) acquire(ctx context.Context, project string) (*slot, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	a.mu.Lock()
	for {
		if a.lane == nil && a.running < a.max && a.byProj[project] < a.perProject {
			sl := a.take(project)
			a.mu.Unlock()
			return sl, nil
		}
		if timer == nil {
			if a.waiting >= a.maxQueued {
				a.mu.Unlock()
				a.m.queriesRejected.Inc()
				return nil, a.busy("queue full")
			}
			timer = time.NewTimer(a.wait)
		}
		a.waiting++
		a.m.queriesWaiting.Set(float64(a.waiting))
		freed := a.freed
		a.mu.Unlock()
		var err error
		select {
		case <-freed:
		case <-timer.C:
			a.m.queriesRejected.Inc()
			err = a.busy(fmt.Sprintf("no slot within %s", a.wait))
		case <-ctx.Done():
			err = ctx.Err()
		}
		a.mu.Lock()
		a.waiting--
		a.m.queriesWaiting.Set(float64(a.waiting))
		if err != nil {
			a.mu.Unlock()
			return nil, err
		}
	}
}

func (a *admission) busy(why string) error {
	return fmt.Errorf("duckdb store: %s: at most %d queries run at once (%d per project) and %d may wait: %w",
		why, a.max, a.perProject, a.maxQueued, store.ErrOverloaded)
}

// take gives project a slot; a.mu is held and there is room.
func (a *admission) take(project string) *slot {
	a.running++
	a.byProj[project]++
	sl := &slot{project: project}
	for o := range a.slots {
		if o.project != project {
			o.shared.Store(true)
			sl.shared.Store(true)
		}
	}
	a.slots[sl] = struct{}{}
	a.m.queriesRunning.Set(float64(a.running))
	return sl
}

func (a *admission) release(sl *slot) {
	a.mu.Lock()
	a.releaseLocked(sl)
	a.mu.Unlock()
}

func (a *admission) releaseLocked(sl *slot) {
	a.running--
	if a.byProj[sl.project]--; a.byProj[sl.project] == 0 {
		delete(a.byProj, sl.project)
	}
	delete(a.slots, sl)
	if a.lane == sl {
		a.lane = nil
	}
	a.m.queriesRunning.Set(float64(a.running))
	a.wake()
}

// wake tells the waiting queries that a slot freed or the lane changed.
func (a *admission) wake() {
	close(a.freed)
	a.freed = make(chan struct{})
}

// errNotAlone is rerunAlone's answer when the query may not, or could
// not in time, run alone: its out-of-memory error stays ambiguous.
var errNotAlone = errors.New("not run alone")

// rerunAlone is for a query that ran out of memory while another
// project's query ran alongside (sl.shared). Whose memory it was cannot be
// told: DuckDB keeps no account per query. So the query runs again
// without them: rerunAlone gives up sl, waits for the lane (one such query
// at a time), holds every new query back from then on, and once the other
// projects' running queries have finished returns a slot for the query to
// run again (its own project's queries may still run: their memory is the
// project's too). If it runs out of memory again (its caller then calls
// tooBigAlone), it is too big for the server whoever else queries (400),
// and its project's out-of-memory errors are believed at once for
// memoryRetryEvery; if it succeeds, the victim of someone else's memory
// got its answer.
//
// A project runs in the lane once per memoryRetryEvery. Within that time,
// or when the lane and the running queries are not free within a.wait
// (nor before the deadline), rerunAlone fails: with errQueryMemory when
// the project's last query in the lane was too big alone, else with
// errNotAlone (answered as load, 503: a retry gets through once the
// memory is free). The lane takes nothing from a project's quota of
// slots: it can only be entered from a slot.
func (a *admission) rerunAlone(ctx context.Context, sl *slot, deadline time.Time) (*slot, error) {
	wait := min(a.wait, time.Until(deadline))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	project := sl.project
	a.mu.Lock()
	a.releaseLocked(sl)
	var mine *slot // the lane, once taken
	for {
		// While its project's query runs in the lane, wait for its outcome.
		if mine == nil && (a.lane == nil || a.lane.project != project) {
			if last, ok := a.alone[project]; ok && time.Since(last.at) < memoryRetryEvery {
				a.mu.Unlock()
				if last.tooBig {
					return nil, errQueryMemory
				}
				return nil, errNotAlone
			}
			if a.lane == nil {
				mine = &slot{project: project}
				a.lane = mine
			}
		}
		if mine != nil && a.running == a.byProj[project] {
			sl := a.take(project)
			a.lane = sl
			now := time.Now()
			for p, r := range a.alone {
				if now.Sub(r.at) >= memoryRetryEvery {
					delete(a.alone, p)
				}
			}
			a.alone[project] = aloneRun{at: now}
			a.mu.Unlock()
			return sl, nil
		}
		freed := a.freed
		a.mu.Unlock()
		var err error
		select {
		case <-freed:
		case <-timer.C:
			err = errNotAlone
		case <-ctx.Done():
			err = ctx.Err()
		}
		a.mu.Lock()
		if errors.Is(err, errNotAlone) && mine == nil && a.lane != nil && a.lane.project == project {
			// Its project's query is in the lane: its outcome is this
			// one's too, so wait for it up to the deadline.
			if left := time.Until(deadline); left > 0 {
				timer.Reset(left)
				err = nil
			}
		}
		if err != nil {
			if mine != nil && a.lane == mine {
				a.lane = nil
				a.wake()
			}
			a.mu.Unlock()
			return nil, err
		}
	}
}

// tooBigAlone records that project's query ran out of memory alone.
func (a *admission) tooBigAlone(project string) {
	a.mu.Lock()
	if r, ok := a.alone[project]; ok {
		r.tooBig = true
		a.alone[project] = r
	}
	a.mu.Unlock()
}

// bounded runs fn for project holding a query slot, under the query
// deadline. fn runs on the caller's goroutine and its context ends at the
// deadline (or with ctx): the DuckDB driver then interrupts the running
// statement. bounded returns only once fn has returned, so when the
// client gets its answer nothing of the query runs on. DuckDB checks for
// the interrupt between vectors of 2,048 rows; the sandbox's value caps
// keep one vector's work to about a second.
func bounded[T any](ctx context.Context, s *Store, project string, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	sl, err := s.admit.acquire(ctx, project)
	if err != nil {
		return zero, err
	}
	defer func() {
		if sl != nil {
			s.admit.release(sl)
		}
	}()
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return zero, errClosed
	}
	s.queries.Add(1)
	s.closeMu.RUnlock()
	defer s.queries.Done()

	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	start := time.Now()
	v, err := fn(qctx)
	if err != nil && ctx.Err() == nil && errors.Is(qctx.Err(), context.DeadlineExceeded) {
		s.m.queriesTimedOut.Inc()
		if over := time.Since(start) - s.cfg.QueryTimeout; over > time.Second {
			s.log.Warn("query stopped late after its deadline", "project", project, "late", over.Round(time.Millisecond))
		}
		return zero, s.timeoutErr()
	}
	if errors.Is(err, errQueryMemory) && sl.shared.Load() {
		// The memory may have been other projects' queries': run it again
		// alone (rerunAlone) before answering.
		memErr := err
		deadline, _ := qctx.Deadline()
		sl, err = s.admit.rerunAlone(ctx, sl, deadline)
		switch {
		case errors.Is(err, errQueryMemory):
			s.m.memoryRetries.WithLabelValues("too-big-before").Inc()
			return zero, memErr
		case errors.Is(err, errNotAlone):
			s.m.memoryRetries.WithLabelValues("busy").Inc()
			return zero, fmt.Errorf("duckdb store: DuckDB's memory (query limit query-memory, %s) was used up while other projects' queries ran alongside this one, and it could not run again without them (once a minute per project, within %s): %w",
				s.cfg.MemoryLimit, s.cfg.QueueTimeout, store.ErrOverloaded)
		case err != nil:
			return zero, err
		}
		v, err = fn(qctx)
		switch {
		case err != nil && ctx.Err() == nil && errors.Is(qctx.Err(), context.DeadlineExceeded):
			s.m.queriesTimedOut.Inc()
			return zero, s.timeoutErr()
		case errors.Is(err, errQueryMemory):
			s.admit.tooBigAlone(sl.project)
			s.m.memoryRetries.WithLabelValues("too-big").Inc()
		case err == nil:
			s.m.memoryRetries.WithLabelValues("answered").Inc()
		}
	}
	if err != nil {
		return zero, err
	}
	return v, nil
}

// errQueryMemory marks the query-memory limit among store.ErrQueryLimit
// errors (memoryErr): bounded answers it as load when the memory may have
// been taken by other projects' queries.
var errQueryMemory = errors.New("query-memory")

type memoryErr struct{ error }

func (e memoryErr) Unwrap() error        { return e.error }
func (e memoryErr) Is(target error) bool { return target == errQueryMemory }

func (s *Store) timeoutErr() error {
	return fmt.Errorf("%w: the query ran longer than %s (query limit query-timeout) and was stopped: narrow the time range, the search or the SQL", store.ErrQueryLimit, s.cfg.QueryTimeout)
}

// limitErr returns the store.ErrQueryLimit a DuckDB error message stands
// for (a value guard of the sandbox, the memory limit), or nil.
func (s *Store) limitErr(raw string) error {
	switch {
	case strings.Contains(raw, query.ValueLimitMarker):
		s.m.queryLimited.WithLabelValues("max-value-bytes").Inc()
		msg, _ := splitDuckError(raw, "")
		return fmt.Errorf("%w: %s", store.ErrQueryLimit, msg)
	case strings.Contains(raw, "Out of Memory Error"):
		s.m.queryLimited.WithLabelValues("query-memory").Inc()
		return memoryErr{fmt.Errorf("%w: the query needs more memory than the server allows queries (query limit query-memory: memory_limit %s, at most %s for all of DuckDB): narrow the time range, aggregate with fewer groups or select less",
			store.ErrQueryLimit, s.cfg.MemoryLimit, formatBytes(s.cfg.MemoryHardLimit))}
	case strings.Contains(raw, "Max expression depth"):
		msg, _ := splitDuckError(raw, "")
		return fmt.Errorf("%w: %s (query limit max-depth)", store.ErrQueryLimit, msg)
	}
	return nil
}

// queryErr classifies a DuckDB error of a statement the store built (a
// search, a histogram; sqlErr is the one for the user's SQL). Limits are
// store.ErrQueryLimit, the query's own mistakes store.ErrInvalidQuery,
// with DuckDB's message only (the excerpt after it quotes the store's
// SQL, with the segment files' paths). Anything else is ours, returned
// wrapped for the log; the API answers it without the message.
func (s *Store) queryErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	raw := err.Error()
	if lerr := s.limitErr(raw); lerr != nil {
		return lerr
	}
	if strings.Contains(raw, "INTERRUPT Error") {
		return fmt.Errorf("duckdb store: query interrupted: %w", context.Canceled)
	}
	msg, _ := splitDuckError(raw, "")
	for _, p := range userErrorKinds {
		if strings.Contains(raw, p) {
			return fmt.Errorf("%w: %s", store.ErrInvalidQuery, msg)
		}
	}
	return fmt.Errorf("duckdb store: query: %w", err)
}

func formatBytes(n int64) string {
	const unit = 1 << 10
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ParseSize reads a size as DuckDB does ("2GB", "512MiB", "1.5 GB"):
// KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB of 1024.
func ParseSize(s string) (int64, error) { return parseBytes(s) }

// parseBytes reads a DuckDB memory size (see ParseSize).
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	var n float64
	if _, err := fmt.Sscan(t[:i], &n); err != nil || i == 0 {
		return 0, fmt.Errorf("memory size %q: want a number and a unit, e.g. 1GB or 512MiB", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}[strings.ToLower(strings.TrimSpace(t[i:]))]
	if mult == 0 {
		return 0, fmt.Errorf("memory size %q: unknown unit (use KB, MB, GB, TB or KiB, MiB, GiB, TiB)", s)
	}
	return int64(n * mult), nil
}

// queryMetrics are the query bounds' metrics (part of metrics).
type queryMetrics struct {
	queriesRunning  prometheus.Gauge
	queriesWaiting  prometheus.Gauge
	queriesRejected prometheus.Counter
	queriesTimedOut prometheus.Counter
	queryLimited    *prometheus.CounterVec
	memoryRetries   *prometheus.CounterVec
}

func newQueryMetrics() queryMetrics {
	return queryMetrics{
		queriesRunning:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_store_queries_running", Help: "Queries (searches, SQL, histograms) running now."}),
		queriesWaiting:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_store_queries_waiting", Help: "Queries waiting for a slot."}),
		queriesRejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_queries_rejected_total", Help: "Queries refused because every slot stayed taken (answered 503 ServerBusy with Retry-After)."}),
		queriesTimedOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_queries_timed_out_total", Help: "Queries interrupted at the query timeout."}),
		queryLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_store_query_limit_hits_total",
			Help: "Queries stopped while running by a limit, by limit (query-memory, max-value-bytes, max-depth); a query run again alone after running out of memory counts each time."}, []string{"limit"}),
		memoryRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_store_query_memory_reruns_total",
			Help: "Queries that ran out of DuckDB's memory beside other projects' queries, by outcome: answered (run again alone, it succeeded), too-big (it ran out alone too: 400), too-big-before (its project's query ran out alone within the last minute: 400 at once), busy (it could not run alone in time: 503)."}, []string{"outcome"}),
	}
}

func (q queryMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{q.queriesRunning, q.queriesWaiting, q.queriesRejected, q.queriesTimedOut, q.queryLimited, q.memoryRetries}
}
