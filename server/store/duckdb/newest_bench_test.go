package duckdb

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/store"
)

// copyDir copies the regular files under src to dst.
func copyDir(tb testing.TB, src, dst string) {
	tb.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o750)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, in); err != nil {
			_ = f.Close()
			return err
		}
		return f.Close()
	})
	require.NoError(tb, err)
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
	n := benchLines()
	src := searchFixture(b, n)
	dir := src.cfg.DataDir
	require.NoError(b, src.Close())
	work := filepath.Join(b.TempDir(), "data")
	copyDir(b, dir, work)
	s, err := Open(Config{DataDir: work, QueueBytes: 512 << 20}, Settings{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
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

	for _, q := range []struct{ name, query string }{
		{"all", "*"},
		{"keyvalue", "status:404"},
		{"phrase", `"/api/v1/orders"`},
	} {
		for _, r := range []struct {
			name string
			span int64
		}{{"1h", 3600}, {"24h", 86400}} {
			for _, rows := range []int{100, 1000} {
				b.Run(q.name+"/"+r.name+"/rows="+strconv.Itoa(rows), func(b *testing.B) {
					ing0, t0 := ingested.Load(), time.Now()
					got := 0
					for b.Loop() {
						to := now() + 1
						got = 0
						for off := 0; off < rows; off += 100 {
							res, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(to-r.span, 0), To: time.Unix(to, 0),
								Query: q.query, Line: 100, Offset: off, Reverse: true})
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
	}
}
