package duckdb

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
)

// TestQueryResourceLimits: queries that would run away (huge constants
// DuckDB folds uninterruptibly, values built through CTEs, thousands of
// CTEs, endless scans, huge results) end with a clear error naming the
// limit (store.ErrQueryLimit, a 400) instead of burning CPU and memory.
// Each runs under a 20 s context: getting ctx.Err() instead would mean
// the limit did not work.
func TestQueryResourceLimits(t *testing.T) {
	s := open(t, Config{QueryTimeout: 3 * time.Second, MaxResultRows: 50, MaxResultBytes: 4 << 10})
	ctx := context.Background()
	idx := &index.Config{Line: &index.LineConfig{}, Keys: map[string]index.KeyConfig{
		"status": {Type: index.TypeLong}, "method": {Type: index.TypeText}}}
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: idx}))
	g := protocoltest.NginxLogGroup(64 << 10)
	require.Greater(t, len(g.Logs), 100)
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, time.Now()))
	all := store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0)}

	manyCTEs := "* | with c0 as (select 1 as x from log)"
	for i := 1; i < 1500; i++ {
		manyCTEs += fmt.Sprintf(", c%d as (select x from c%d)", i, i-1)
	}
	manyCTEs += " select count(*) from c1499"
	for _, c := range []struct{ query, msg string }{
		{"* | select range(1, 100000000)", "at most 1000000 are allowed"},
		{"* | select repeat('x', 100000000)", "at most 16384 are allowed"},
		{"* | select count(*) from range(100000000000) a", "ran longer than 3s (query limit query-timeout)"},
		{"* | select method limit 1000", "more than 50 rows (query limit max-result-rows)"},
		{"* | select repeat('x', 16000) limit 1", "larger than 4096 bytes (query limit max-result-bytes)"},
		{manyCTEs[:30<<10], "query limit max-ctes"},
		{manyCTEs, "query limit max-query-bytes at 0: the query is 45817 bytes long; at most 32768 are allowed"},
		{"* | select " + strings.Repeat("(", 100) + "1" + strings.Repeat(")", 100), "query limit max-depth"},
		// Caps hold for values from a CTE or a column, checked as DuckDB runs.
		{"* | with a as (select repeat('x', 16000) s) select length(repeat(s, 1024)) from a", "repeat() would build a value of more than 16384 bytes (query limit max-value-bytes)"},
		{"* | with a as (select repeat('x', 16000) s) select length(replace(s, 'x', 'yy')) from a", "replace() would build a value of more than 16384 bytes"},
		{"* | with a as (select repeat('x', 1000) s) select length(regexp_replace(s, '', 'yyyyyyyyyyyyyyyyyyyy', 'g')) from a", "regexp_replace() would build"},
		{"* | select max(length(repeat(method, 100) || replace(method, 'G', 'gg'))) from log, range(10)", ""},
	} {
		t.Run(c.query[:min(len(c.query), 80)], func(t *testing.T) {
			qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			req := all
			req.Query = c.query
			_, err := s.Search(qctx, "p", "l", req)
			if c.msg == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, store.ErrQueryLimit)
			require.ErrorContains(t, err, c.msg)
		})
	}

	// The store still answers afterwards (the timed-out query released its slot).
	req := all
	req.Query = "* | select count(*) as c"
	res, err := s.Search(ctx, "p", "l", req)
	require.NoError(t, err)
	require.Len(t, res.Rows, 1)

	var limit string
	require.NoError(t, s.db.QueryRowContext(ctx, "SELECT current_setting('memory_limit')").Scan(&limit))
	require.NotEmpty(t, limit)
}

func TestDefaultMemoryLimit(t *testing.T) {
	s, err := Open(Config{DataDir: t.TempDir()}, Settings{})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	var limit string
	require.NoError(t, s.db.QueryRow("SELECT current_setting('memory_limit')").Scan(&limit))
	require.Equal(t, "732.4 MiB", limit, "768MB default, not DuckDB's 80% of RAM")
}

// TestMemoryGuard: values DuckDB computes outside memory_limit (here a
// list of 100,000 strings of 16 KB, 1.6 GB, in one expression) hit the
// hard limit on DuckDB's allocator: the allocation fails and the query
// with it, as a query limit naming the memory. If a DuckDB upgrade
// renamed the wrapped allocator symbols, memguardUsed would stay 0.
func TestMemoryGuard(t *testing.T) {
	s := open(t, Config{MemoryLimit: "256MB", MemoryHardLimit: 320 << 20})
	ctx := context.Background()
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l"}))
	res, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0),
		Query: "* | select sum(length(repeat('x', 1000) || cast(i as varchar))) as n from range(10000) t(i)"})
	require.NoError(t, err)
	require.Equal(t, "10038890", res.Rows[0][0].Value)
	require.Greater(t, memguardPeak(), int64(0), "the guard counts DuckDB's allocations")

	limit := memguardLimit()
	_, err = s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0),
		Query: "* | select max(len(list_transform(range(100000), x -> repeat('x', 16000) || cast(x + i as varchar)))) as n from range(1) t(i)"})
	require.ErrorIs(t, err, store.ErrQueryLimit)
	require.ErrorContains(t, err, "query limit query-memory")
	require.NotContains(t, err.Error(), "LINE 1", "no internal SQL")
	require.LessOrEqual(t, memguardPeak(), limit)
	require.Greater(t, memguardRefused(), int64(0))
	require.Equal(t, 1.0, testutil.ToFloat64(s.m.queryLimited.WithLabelValues("query-memory")))
}

// TestMemoryShared: DuckDB's memory is one pool for every query and keeps
// no account per query, so an out-of-memory while another project's query
// ran alongside may be that project's doing. Such a query runs again
// alone before it is answered: too big alone, it gets the query-memory
// limit (400) — and its project's next ones for a minute at once, without
// holding the others back again; an ordinary query that only lacked the
// memory others held gets its answer; when it cannot run alone in time it
// is load (503, retried). Alone, or beside only its own project's
// queries, an out-of-memory is the query's own (400 at once).
func TestMemoryShared(t *testing.T) {
	s := open(t, Config{MemoryLimit: "256MB", MemoryHardLimit: 320 << 20, QueueTimeout: 2 * time.Second})
	ctx := context.Background()
	for _, p := range []string{"p", "other", "victim"} {
		require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: p, Logstore: "l"}))
	}
	all := store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0)}
	hungry := all
	hungry.Query = "* | select max(len(list_transform(range(100000), x -> repeat('x', 16000) || cast(x + i as varchar)))) as n from range(1) t(i)"
	reruns := func(outcome string) float64 {
		return testutil.ToFloat64(s.m.memoryRetries.WithLabelValues(outcome))
	}
	// inLane waits until a query has taken the lane (is waiting to run
	// again without the other projects' queries).
	inLane := func() {
		for {
			s.admit.mu.Lock()
			l := s.admit.lane
			s.admit.mu.Unlock()
			if l != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// holdSlot runs a query of project (its slot held) until release.
	holdSlot := func(project string) (release func()) {
		sl, err := s.admit.acquire(ctx, project)
		require.NoError(t, err)
		return func() { s.admit.release(sl) }
	}

	_, err := s.Search(ctx, "p", "l", hungry)
	require.ErrorIs(t, err, store.ErrQueryLimit, "alone: its own size")

	release := holdSlot("p")
	_, err = s.Search(ctx, "p", "l", hungry)
	require.ErrorIs(t, err, store.ErrQueryLimit, "alongside its own project's query")
	release()
	require.Zero(t, reruns("too-big")+reruns("busy"), "not run again")

	// Another project's query runs on for longer than the queue wait: the
	// query cannot run alone in time, and whose memory it was stays open.
	release = holdSlot("other")
	_, err = s.Search(ctx, "p", "l", hungry)
	require.ErrorIs(t, err, store.ErrOverloaded, "beside another project's query that does not end")
	require.NotErrorIs(t, err, store.ErrQueryLimit)
	require.ErrorContains(t, err, "could not run again without them")
	require.Equal(t, 1.0, reruns("busy"))

	// It ends soon: the query runs again alone and is too big alone too;
	// a second of its project's queries, beside it, gets the same answer
	// (run once in the lane, or waiting there for the first one's outcome).
	go func() { inLane(); release() }()
	errs := make(chan error, 2)
	for range 2 {
		go func() { _, err := s.Search(ctx, "p", "l", hungry); errs <- err }()
	}
	for range 2 {
		err = <-errs
		require.ErrorIs(t, err, store.ErrQueryLimit, "too big alone")
		require.ErrorContains(t, err, "query limit query-memory")
	}
	require.Equal(t, 1.0, reruns("too-big"), "run alone once")
	require.Equal(t, 1.0, reruns("too-big-before"))

	// Within the minute that project's out-of-memory errors are believed
	// at once: here the other query never ends, so a query that waited to
	// run alone would get the 503.
	release = holdSlot("other")
	_, err = s.Search(ctx, "p", "l", hungry)
	require.ErrorIs(t, err, store.ErrQueryLimit, "its project's query was too big alone a moment ago")
	require.Equal(t, 2.0, reruns("too-big-before"))
	release()

	// The victim: an ordinary query finds DuckDB's memory full, held by
	// another project's running query. It runs again alone once that one
	// has ended, and gets its answer.
	oom := testutil.ToFloat64(s.m.queryLimited.WithLabelValues("query-memory"))
	release = holdSlot("p")
	held := memguardLimit() - memguardUsed()
	memguardHold(held)
	go func() {
		inLane()
		memguardHold(-held)
		release()
	}()
	ordinary := all
	ordinary.Query = "* | select count(*) as n, max(i) as m from range(100000) t(i)"
	res, err := s.Search(ctx, "victim", "l", ordinary)
	require.NoError(t, err, "the victim's query was refused")
	require.Equal(t, "100000", res.Rows[0][0].Value)
	require.Equal(t, 1.0, reruns("answered"))
	require.Equal(t, oom+1, testutil.ToFloat64(s.m.queryLimited.WithLabelValues("query-memory")),
		"the victim's first run ran out of memory, its second did not")

	// A query that starts after the others ended is alone again.
	_, err = s.Search(ctx, "p", "l", hungry)
	require.ErrorIs(t, err, store.ErrQueryLimit)
}

// TestTimeoutStopsDuckDB: at the query timeout DuckDB is interrupted, and
// Search returns only once it has stopped: the process uses no CPU for
// the query after the answer.
func TestTimeoutStopsDuckDB(t *testing.T) {
	s := open(t, Config{QueryTimeout: time.Second, Threads: 2})
	ctx := context.Background()
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l"}))
	for _, q := range []string{
		"* | select count(*) as c from range(100000000000)",
		"* | select max(length(lpad(cast(i as varchar), 16384, 'x'))) from range(100000000) t(i)",
		"* | select count(*) from range(1000000) a, range(1000000) b where a.range % 7 = b.range % 11",
	} {
		t.Run(q, func(t *testing.T) {
			start := time.Now()
			_, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: q})
			elapsed := time.Since(start)
			require.ErrorIs(t, err, store.ErrQueryLimit)
			require.ErrorContains(t, err, "query limit query-timeout")
			cpu0 := processCPU(t)
			time.Sleep(time.Second)
			after := processCPU(t) - cpu0
			t.Logf("answered after %v; CPU in the second after: %v", elapsed.Round(time.Millisecond), after)
			// Each query would run for minutes uninterrupted; the bound is
			// far past the 1 s timeout because a loaded box stretches it
			// (5.6 s seen at load ~20 against the former 5 s bound). The
			// CPU check below is the one that shows DuckDB stopped.
			require.Less(t, elapsed, 30*time.Second)
			require.Less(t, after, 300*time.Millisecond, "DuckDB kept running after the answer")
		})
	}
}

// processCPU is this process's user+system CPU time.
func processCPU(t *testing.T) time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	require.NoError(t, err)
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, err := strconv.ParseInt(f[11], 10, 64)
	require.NoError(t, err)
	stime, err := strconv.ParseInt(f[12], 10, 64)
	require.NoError(t, err)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ = 100
}

// TestSelectStarHidesInternals: select * shows a log's keys as the Log
// Service does, not the storage columns.
func TestSelectStarHidesInternals(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	idx := &index.Config{Line: &index.LineConfig{}, Keys: map[string]index.KeyConfig{
		"status": {Type: index.TypeLong}, "method": {Type: index.TypeText}}}
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: idx}))
	g := protocoltest.NginxLogGroup(4 << 10)
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, time.Now()))
	res, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: "* | select * limit 1"})
	require.NoError(t, err)
	require.Equal(t, []string{"__time__", "__source__", "__topic__", "method", "status"}, res.Keys)
	_, err = s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: "* | select __contents__ limit 1"})
	require.ErrorIs(t, err, store.ErrInvalidQuery)
}
