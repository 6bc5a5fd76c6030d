package duckdb_test

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/duckdb"
	"github.com/sluicelog/sluice/server/store/duckdb/duckdbtest"
)

// openFixture opens a copy of the cached data set (duckdbtest.Fixture):
// 1M lines, or 10M with SLUICE_BENCH_10M=1, in logstore p/l.
func openFixture(b *testing.B, cfg duckdb.Config) *duckdb.Store {
	cfg.DataDir = filepath.Join(b.TempDir(), "data")
	duckdbtest.CopyDir(b, duckdbtest.Fixture(b, duckdbtest.Lines(), "p", "l"), cfg.DataDir)
	s, err := duckdb.Open(cfg, duckdb.Settings{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// processCPU returns the process's user+system CPU time in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkSearch runs queries over the cached fixture: 1M lines, or 10M
// with SLUICE_BENCH_10M=1.
func BenchmarkSearch(b *testing.B) {
	n := duckdbtest.Lines()
	s := openFixture(b, duckdb.Config{})
	ctx := context.Background()
	from, to := time.Unix(duckdbtest.From, 0), time.Unix(duckdbtest.From+30*86400, 0)
	for _, q := range []struct{ name, query string }{
		{"fulltext-rare", "kube-probe and post"},
		{"fulltext-nomatch", "nomatchxyz"},
		{"fulltext-common", "curl"},
		{"field", "status:404"},
		{"sql-groupby-status", "* | select status, count(*) group by status"},
		{"sql-filtered", "curl | select method, count(*) as c, avg(body_bytes_sent) group by method order by c desc"},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				if _, err := s.Search(ctx, "p", "l", store.SearchRequest{From: from, To: to, Query: q.query, Line: 100, Reverse: true}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "lines")
			// Wall time on a shared machine waits for other work; CPU time
			// (all DuckDB threads) does not.
			b.ReportMetric(float64(processCPU()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
		})
	}
	b.Run("histogram", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Histogram(ctx, "p", "l", store.HistogramRequest{From: from, To: to, Query: "curl"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkNewestFirst measures what the console's search page asks of
// the store: the newest 100 (or 1,000, as ten pages of 100) logs of a
// search over the last hour or day, newest first, on the cached 10M-line
// fixture (SLUICE_BENCH_10M=1; 1M otherwise) while 20,000 lines/s are
// being written into the same logstore with current timestamps — so every
// query also makes the writes of the last moments visible first, and the
// newest day is split into many fresh segments, as on a live server.
// "Now" is the fixture's newest log time plus the time since the
// benchmark started. ms/op is the server time of the search (all pages);
// ingest-lines/s shows the ingestion rate held meanwhile.
func BenchmarkNewestFirst(b *testing.B) {
	s := openFixture(b, duckdb.Config{QueueBytes: 512 << 20})
	ctx := context.Background()

	res, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<40, 0), Query: "* | select max(__time__) as t"})
	require.NoError(b, err)
	newest, err := strconv.ParseInt(res.Rows[0][0].Value, 10, 64)
	require.NoError(b, err)
	start := time.Now()
	now := func() int64 { return newest + int64(time.Since(start)/time.Second) }

	// 20,000 lines/s in groups of 1,000 every 50 ms, stamped "now".
	const rate, per = 20_000, 1_000
	g := protocoltest.NginxLogGroup(1 << 20)
	g.Logs = g.Logs[:per]
	var ingested atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second * per / rate)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			gg := *g
			gg.Logs = slices.Clone(g.Logs)
			t := uint32(now())
			for i := range gg.Logs {
				gg.Logs[i].Time = t
			}
			if err := s.Write(ctx, "p", "l", []protocol.LogGroup{gg}, time.Now()); err != nil {
				b.Error(err)
				return
			}
			ingested.Add(per)
		}
	}()
	b.Cleanup(func() { close(stop); wg.Wait() })
	time.Sleep(2 * time.Second) // ingestion under way, fresh segments exist

	for _, c := range duckdbtest.NewestFirstCases() {
		b.Run(c.Name, func(b *testing.B) {
			ing0, t0 := ingested.Load(), time.Now()
			got := 0
			for b.Loop() {
				to := now() + 1
				got = 0
				for off := 0; off < c.Rows; off += 100 {
					res, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(to-c.Span, 0), To: time.Unix(to, 0),
						Query: c.Query, Line: 100, Offset: off, Reverse: true})
					if err != nil {
						b.Fatal(err)
					}
					got += len(res.Rows)
					if len(res.Rows) < 100 {
						break
					}
				}
			}
			b.ReportMetric(float64(got), "rows")
			b.ReportMetric(float64(ingested.Load()-ing0)/time.Since(t0).Seconds(), "ingest-lines/s")
		})
	}
}
