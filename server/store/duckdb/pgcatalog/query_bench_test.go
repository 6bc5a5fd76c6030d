package pgcatalog_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/duckdb"
)

// BenchmarkQueryLocalVsObjectStorage runs the same searches over the same
// nginx lines (1M; SLUICE_BENCH_10M=1 for 10M) spread over the last 23
// hours, stored three ways: the embedded store on local disk, a shared
// node whose object cache is empty before every query (cold: each query
// lists its segments in PostgreSQL and downloads them from SeaweedFS), and
// a shared node that has run the query before (warm: every segment in its
// cache). ms/op is the query's wall time; the loading is not timed. Cold
// runs also report the segments (and MiB) the query fetched. Each group's
// source is one of 32, so a search for one source shows what segment
// statistics save.
func BenchmarkQueryLocalVsObjectStorage(b *testing.B) {
	n := 1_000_000
	if os.Getenv("SLUICE_BENCH_10M") != "" {
		n = 10_000_000
	}
	ctx := context.Background()
	c := newCluster(b)
	writer := c.node(b, nodeOpts{})
	local, err := duckdb.Open(duckdb.Config{DataDir: b.TempDir(), Threads: 2, MemoryLimit: "256MB", QueueBytes: 1 << 30},
		duckdb.Settings{Registerer: prometheus.NewRegistry()})
	require.NoError(b, err)
	b.Cleanup(func() { _ = local.Close() })
	for _, s := range []*duckdb.Store{writer, local} {
		require.NoError(b, s.EnsureLogstore(ctx, benchSpec()))
	}

	// Groups of ~1 MiB, times spread evenly over [now-23h, now), written
	// by 8 writers to each store (a shared write waits for its commit).
	g := protocoltest.NginxLogGroup(1 << 20)
	per := len(g.Logs)
	groups := (n + per - 1) / per
	from := time.Now().Add(-23 * time.Hour).Unix()
	span := int64(23 * 3600)
	t0 := time.Now()
	for _, s := range []*duckdb.Store{writer, local} {
		var wg sync.WaitGroup
		next := make(chan int)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range next {
					gg := *g
					// 32 sources, taken in turn: a commit holds the groups
					// of the 8 writers, so a segment has about 8 of them.
					gg.Source = "10.0.3." + strconv.Itoa(k%32)
					gg.Logs = slices.Clone(g.Logs)
					for i := range gg.Logs {
						gg.Logs[i].Time = uint32(from + span*int64(k*per+i)/int64(groups*per))
					}
					// Overloaded is a client's 503: wait and send again.
					for {
						err := s.Write(ctx, "p", "l", []protocol.LogGroup{gg}, time.Now())
						if !errors.Is(err, store.ErrOverloaded) {
							if err != nil {
								b.Error(err)
							}
							break
						}
						time.Sleep(50 * time.Millisecond)
					}
				}
			}()
		}
		for k := range groups {
			next <- k
		}
		close(next)
		wg.Wait()
	}
	b.Logf("%d lines written to both stores in %s", groups*per, time.Since(t0).Round(time.Second))

	// Warm: one reader node, every query run once before timing.
	warm := c.node(b, nodeOpts{})
	queries := []struct{ name, query string }{
		{"count", "* | select count(*) as n"},
		{"groupby", "* | select status, count(*) as n group by status order by n desc"},
		{"search404", "status:404"},
		{"source", "__source__:10.0.3.7 | select count(*) as n"},
	}
	run := func(b *testing.B, s *duckdb.Store, q string) {
		res, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(from, 0), To: time.Now().Add(time.Minute),
			Query: q, Line: 100, Reverse: true})
		require.NoError(b, err)
		require.NotEmpty(b, res.Rows)
	}
	for _, q := range queries {
		b.Run(q.name+"/local", func(b *testing.B) {
			for b.Loop() {
				run(b, local, q.query)
			}
		})
		b.Run(q.name+"/s3-cold", func(b *testing.B) {
			var files, bytes int64
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				dir := b.TempDir()
				cold := c.node(b, nodeOpts{cacheDir: dir})
				b.StartTimer()
				run(b, cold, q.query)
				b.StopTimer()
				n, size := dirFiles(b, dir)
				files, bytes = files+n, bytes+size
				b.StartTimer()
			}
			b.ReportMetric(float64(files)/float64(b.N), "segments-fetched/op")
			b.ReportMetric(float64(bytes)/float64(b.N)/(1<<20), "MiB-fetched/op")
		})
		b.Run(q.name+"/s3-warm", func(b *testing.B) {
			run(b, warm, q.query)
			b.ResetTimer()
			for b.Loop() {
				run(b, warm, q.query)
			}
		})
	}
}

// dirFiles counts the files in dir (an object cache) and their bytes.
func dirFiles(b *testing.B, dir string) (n, size int64) {
	require.NoError(b, filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n, size = n+1, size+info.Size()
		}
		return err
	}))
	return n, size
}

// benchSpec indexes the nginx lines' status as the search benchmarks do.
func benchSpec() store.LogstoreSpec {
	sp := spec()
	sp.Index.Keys = map[string]index.KeyConfig{"status": {Type: index.TypeLong}, "request_uri": {Type: index.TypeText}}
	return sp
}
