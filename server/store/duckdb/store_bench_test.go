package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
)

// Figures (shared 2-core box, see the package documentation for the
// latest run) are reported by `make bench` / go test -bench.

func benchIndex() *index.Config {
	return &index.Config{
		Line: &index.LineConfig{Token: index.DefaultTokens()},
		Keys: map[string]index.KeyConfig{
			"status":          {Type: index.TypeLong, DocValue: true},
			"body_bytes_sent": {Type: index.TypeLong, DocValue: true},
			"method":          {Type: index.TypeText, DocValue: true},
			"request_uri":     {Type: index.TypeText, DocValue: true},
		},
	}
}

// BenchmarkWrite measures durable ingestion of nginx LogGroups (10 keys)
// through Store.Write from 16 concurrent writers per core (32 on the
// 2-core box), as a server receiving from many agents has many PutLogs
// in flight; group commit batches them. With request durability each
// write waits for its fsync, so throughput with small groups depends on
// concurrency (SLUICE_BENCH_PARALLEL sets writers per core;
// docs/benchmarks.md has figures for several); with async durability
// (SyncInterval 1s) it waits for the write to the WAL file only.
func BenchmarkWrite(b *testing.B) {
	for _, c := range []struct {
		size, groups int
		durability   string
	}{
		{4 << 10, 1, "request"}, {64 << 10, 1, "request"}, {1 << 20, 1, "request"}, {1 << 20, 32, "request"},
		{4 << 10, 1, "async"}, {64 << 10, 1, "async"}, {1 << 20, 1, "async"},
	} {
		size := c.size
		b.Run(fmt.Sprintf("durability=%s/group=%dKiB/groups=%d", c.durability, size>>10, c.groups), func(b *testing.B) {
			threads, _ := strconv.Atoi(os.Getenv("SLUICE_BENCH_THREADS")) // DuckDB threads, 0 = its default (cores)
			var every time.Duration
			if c.durability == "async" {
				every = time.Second // as sluice-server --durability=async
			}
			s, err := Open(Config{DataDir: b.TempDir(), QueueBytes: 512 << 20, Threads: threads, SyncInterval: every}, Settings{})
			require.NoError(b, err)
			defer s.Close()
			ctx := context.Background()
			require.NoError(b, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: benchIndex()}))
			g := protocoltest.NginxLogGroup(size)
			b.SetBytes(int64(protocol.LogGroupSize(g) * c.groups))
			b.ReportAllocs()
			par := 16
			if p, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_PARALLEL")); err == nil && p > 0 {
				par = p // writers per core; the API has one per concurrent request
			}
			b.SetParallelism(par)
			var lines, overloaded atomic.Int64
			start, cpu0 := time.Now(), cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				groups := make([]protocol.LogGroup, c.groups)
				for i := range groups {
					groups[i] = *g
				}
				for pb.Next() {
					err := s.Write(ctx, "p", "l", groups, time.Now())
					for errors.Is(err, store.ErrOverloaded) {
						// As a client would on 503: back off, then retry.
						overloaded.Add(1)
						time.Sleep(10 * time.Millisecond)
						err = s.Write(ctx, "p", "l", groups, time.Now())
					}
					if err != nil {
						b.Error(err)
						return
					}
					lines.Add(int64(len(g.Logs) * c.groups))
				}
			})
			ackWall, ackCPU := time.Since(start), cpuTime()-cpu0
			// Include the loader's work: wait until everything is in DuckDB.
			s.mu.RLock()
			ls := s.logstores[lsKey{"p", "l"}]
			s.mu.RUnlock()
			require.NoError(b, s.waitLoaded(ctx, ls))
			wall, cpu := time.Since(start), cpuTime()-cpu0
			b.ReportMetric(float64(lines.Load())/wall.Seconds(), "lines/s")
			// The machine is shared: CPU time per line is the steadier figure.
			b.ReportMetric(float64(cpu)/float64(lines.Load()), "cpu-ns/line")
			// Acknowledgement alone (WAL): what a burst costs before loading.
			b.ReportMetric(float64(lines.Load())/ackWall.Seconds(), "ack-lines/s")
			b.ReportMetric(float64(ackCPU)/float64(lines.Load()), "ack-cpu-ns/line")
			// Loads below a row group cost about twice as much per line.
			b.ReportMetric(float64(lines.Load())/testutil.ToFloat64(s.m.commits), "lines/load")
			b.ReportMetric(float64(diskBytes(b, s))/float64(lines.Load()), "disk-B/line")
			b.ReportMetric(float64(overloaded.Load()), "retries")
			// Group commit: writes per fsync and the mean write+fsync time.
			var h dto.Metric
			require.NoError(b, s.m.walSyncSeconds.Write(&h))
			if n := h.GetHistogram().GetSampleCount(); n > 0 {
				b.ReportMetric(testutil.ToFloat64(s.m.walWrites)/float64(n), "writes/sync")
				b.ReportMetric(h.GetHistogram().GetSampleSum()/float64(n)*1e6, "sync-µs")
			}
		})
	}
}

// cpuTime returns the process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkBuildRows measures the Go side of ingestion (LogGroup to
// appender rows: contents blob, full-text tokens, typed values).
func BenchmarkBuildRows(b *testing.B) {
	sch := newSchema(benchIndex(), desiredFields(nil, benchIndex()))
	ls := &logstore{id: 1, schema: sch}
	g := protocoltest.NginxLogGroup(64 << 10)
	groups := []protocol.LogGroup{*g}
	b.SetBytes(int64(protocol.LogGroupSize(g)))
	b.ReportAllocs()
	for b.Loop() {
		buildRows(nil, ls, sch, math.MinInt32, groups, time.Time{})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(g.Logs)), "ns/line")
}

// BenchmarkLoad measures the loader alone: rows already built and
// acknowledged are written as a segment and recorded in one transaction
// (WAL position included) per op, as the loader does. rows=122880 is a
// full load (LoadRows, one row group); rows=20000 is what small loads
// cost (a query forcing a load, or a short FlushInterval at a modest
// ingestion rate).
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{20_000, 122_880} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			threads, _ := strconv.Atoi(os.Getenv("SLUICE_BENCH_THREADS"))
			s, err := Open(Config{DataDir: b.TempDir(), Threads: threads}, Settings{})
			require.NoError(b, err)
			defer s.Close()
			ctx := context.Background()
			require.NoError(b, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: benchIndex()}))
			s.mu.RLock()
			ls := s.logstores[lsKey{"p", "l"}]
			s.mu.RUnlock()
			g := protocoltest.NginxLogGroup(1 << 20)
			var (
				reqs        []*writeReq
				rows, bytes int
			)
			for rows < n {
				gg := *g
				gg.Logs = g.Logs[:min(len(g.Logs), n-rows)]
				parts, _, _ := buildRows(nil, ls, ls.schema, math.MinInt32, []protocol.LogGroup{gg}, time.Now())
				r := &writeReq{parts: parts}
				r.nrows = r.rows()
				rows += r.nrows
				bytes += protocol.LogGroupSize(&gg)
				reqs = append(reqs, r)
			}
			b.SetBytes(int64(bytes))
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				// On the writer goroutine, which owns segment ids.
				require.NoError(b, s.control(ctx, func(ctx context.Context, c *sql.Conn) error { return s.appendTx(ctx, c, reqs, 0) }))
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*rows), "cpu-ns/line")
			b.ReportMetric(float64(diskBytes(b, s))/float64(b.N*rows), "disk-B/line")
		})
	}
}

// diskBytes checkpoints s and returns the size of its database file and
// segments.
func diskBytes(b *testing.B, s *Store) int64 {
	_, err := s.db.Exec("CHECKPOINT")
	require.NoError(b, err)
	var n int64
	err = filepath.WalkDir(s.cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(filepath.Dir(path)) == "wal" {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	require.NoError(b, err)
	return n
}
