// Package duckdbtest builds the DuckDB store's benchmark data set once and
// keeps it under $SLUICE_CACHE/duckdb-bench, for the store's own search
// benchmarks and for benchmarks of what sits above the store (the
// console's browser benchmark serves it from a real server).
//
// The data: n nginx access lines (protocoltest.NginxLogGroup, 1,000
// distinct lines cycled) written through Store.Write, each million over
// about a day and a half from From, the next million two days later (10M
// lines = 20 day partitions, ~120 MB of Parquet segments).
package duckdbtest

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/duckdb"
)

// From is the time of the data set's first line (2024-03-05 00:00 UTC).
const From = 1709596800

// Lines is the size of data set benchmarks use: 10M lines with
// SLUICE_BENCH_10M=1 (the figure issue targets are stated at), 1M
// otherwise.
func Lines() int {
	if os.Getenv("SLUICE_BENCH_10M") != "" {
		return 10_000_000
	}
	return 1_000_000
}

// NewestFirstCase is one newest-first search of the benchmarks on the
// data set: Query over the last Span seconds, Rows rows in pages of 100.
type NewestFirstCase struct {
	Name, Query string
	Span        int64
	Rows        int
}

// NewestFirstCases are the searches the store's and the console's
// newest-first benchmarks run, so that their figures compare.
func NewestFirstCases() []NewestFirstCase {
	var out []NewestFirstCase
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
				out = append(out, NewestFirstCase{Name: q.name + "/" + r.name + "/rows=" + strconv.Itoa(rows), Query: q.query, Span: r.span, Rows: rows})
			}
		}
	}
	return out
}

// Index is the data set's index: full text, status and body_bytes_sent
// long, method and request_uri text, all with analytics.
func Index() *index.Config {
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

// Fixture returns the data directory of a store (duckdb.Config.DataDir)
// holding n lines in project/logstore, building it on first use (about a
// minute for 10M lines on an idle 2-core machine). It is shared: open a
// copy (CopyDir) to write to it.
func Fixture(tb testing.TB, n int, project, logstore string) string {
	tb.Helper()
	dir := filepath.Join(testenv.Cache(), "duckdb-bench", "v4-"+strconv.Itoa(n)+"-"+project+"-"+logstore)
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return dir
	}
	// Built aside and renamed into place, so a build cut short is never
	// taken for the data set.
	tmp := dir + ".building-" + strconv.Itoa(os.Getpid())
	require.NoError(tb, os.RemoveAll(tmp))
	tb.Logf("building the %d-line fixture in %s", n, dir)
	build(tb, tmp, n, project, logstore)
	require.NoError(tb, os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o600))
	require.NoError(tb, os.RemoveAll(dir))
	require.NoError(tb, os.Rename(tmp, dir))
	return dir
}

func build(tb testing.TB, dir string, n int, project, logstore string) {
	s, err := duckdb.Open(duckdb.Config{DataDir: dir, QueueBytes: 1 << 30}, duckdb.Settings{})
	require.NoError(tb, err)
	ctx := context.Background()
	require.NoError(tb, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: project, Logstore: logstore, Index: Index()}))
	g := protocoltest.NginxLogGroup(1 << 20)
	per := len(g.Logs)
	base := min(n, 1_000_000)
	step := max(1, 130000/(base/per+1)) // spread over ~1.5 days
	for m := 0; m*base < n; m++ {
		for written, k := 0, 0; written < base; k++ {
			c := min(per, base-written)
			gg := *g
			gg.Logs = slices.Clone(g.Logs[:c])
			for i := range gg.Logs {
				gg.Logs[i].Time = uint32(From + 2*86400*m + k*step + i*step/per)
			}
			require.NoError(tb, s.Write(ctx, project, logstore, []protocol.LogGroup{gg}, time.Now()))
			written += c
		}
	}
	require.NoError(tb, s.Close())
}

// CopyDir copies the regular files under src to dst.
func CopyDir(tb testing.TB, src, dst string) {
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
