package pgcatalog_test

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/duckdb"
)

// pruneSpec: host is text (not case sensitive, default tokens), status
// long, code text holding numbers, user text with many values.
func pruneSpec() store.LogstoreSpec {
	return store.LogstoreSpec{Project: "p", Logstore: "l", TTLDays: 30, Index: &index.Config{
		Line: &index.LineConfig{Token: index.DefaultTokens()},
		Keys: map[string]index.KeyConfig{
			"host": {Type: index.TypeText}, "status": {Type: index.TypeLong},
			"code": {Type: index.TypeText}, "user": {Type: index.TypeText}, "n": {Type: index.TypeLong},
		}}}
}

// pruneSegment is what one commit (one segment) holds.
type pruneSegment struct {
	topic, region string
	hosts         []string // one log each, cycled over rows
	status        int
	users         int // distinct users, 0 = the key is absent
}

var pruneSegments = []pruneSegment{
	{"t1", "eu", []string{"a"}, 200, 0},
	{"t2", "us", []string{"b"}, 500, 0},
	{"t1", "eu", []string{"A/1"}, 404, 0}, // host:a matches: the index ignores case, "/" splits
	{"t1", "us", []string{"c", "d"}, 200, 0},
	{"t3", "ap", []string{"e"}, 200, 40}, // too many users to list
	{"t1", "eu", []string{"f"}, 201, 0},
	{"t1", "eu", []string{"g"}, 202, 0},
	{"t1", "eu", []string{"h"}, 203, 0},
}

const prunePer = 40 // logs per segment

// writePruneData writes pruneSegments, one commit each, to every store;
// log n of segment i has n = i*prunePer+row.
func writePruneData(t *testing.T, stores ...*duckdb.Store) {
	ctx := context.Background()
	now := time.Now()
	for _, s := range stores {
		require.NoError(t, s.EnsureLogstore(ctx, pruneSpec()))
	}
	for i, sg := range pruneSegments {
		g := protocol.LogGroup{Topic: sg.topic, Source: "10.0.0." + fmt.Sprint(i), LogTags: []protocol.LogTag{{Key: "region", Value: sg.region}}}
		for r := range prunePer {
			c := []protocol.LogContent{{Key: "n", Value: fmt.Sprint(i*prunePer + r)}, {Key: "host", Value: sg.hosts[r%len(sg.hosts)]},
				{Key: "status", Value: fmt.Sprint(sg.status)}, {Key: "code", Value: fmt.Sprint(sg.status)}, {Key: "msg", Value: "request from " + sg.hosts[r%len(sg.hosts)]}}
			if sg.users > 0 {
				c = append(c, protocol.LogContent{Key: "user", Value: fmt.Sprintf("u%d", r%sg.users)})
			}
			g.Logs = append(g.Logs, protocol.Log{Time: uint32(now.Unix()), Contents: c})
		}
		for _, s := range stores {
			require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{g}, now))
		}
	}
}

// ns returns the n of every log a search returns, sorted.
func ns(t *testing.T, s *duckdb.Store, q, topic string) []string {
	t.Helper()
	res, err := s.Search(context.Background(), "p", "l", store.SearchRequest{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour),
		Query: q, Topic: topic, Line: 1000})
	require.NoError(t, err, q)
	out := []string{}
	for _, row := range res.Rows {
		for _, f := range row {
			if f.Key == "n" {
				out = append(out, f.Value)
			}
		}
	}
	slices.Sort(out)
	return out
}

// segmentsQueried returns the node's sluice_store_query_segments_total by
// result.
func segmentsQueried(t *testing.T, reg *prometheus.Registry) (searched, pruned int) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "sluice_store_query_segments_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := int(m.GetCounter().GetValue())
			switch m.GetLabel()[0].GetValue() {
			case "searched":
				searched = v
			case "pruned":
				pruned = v
			}
		}
	}
	return searched, pruned
}

// cachedSegments counts the segment files in an object cache.
func cachedSegments(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".parquet") {
			n++
		}
		return err
	}))
	return n
}

// A query whose search constrains a key fetches only the segments whose
// statistics can match it, and answers exactly what a store without
// statistics answers; searches that statistics cannot decide (or, not,
// full text, another case, numbers as text) read what they must. After
// compaction the merged segment's statistics still prune.
func TestSharedQueriesSkipSegmentsByStatistics(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	writer := c.node(t, nodeOpts{})
	local, err := duckdb.Open(duckdb.Config{DataDir: t.TempDir(), Threads: 2, MemoryLimit: "256MB"}, duckdb.Settings{Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, local.Close()) })
	writePruneData(t, writer, local)
	require.Len(t, c.objects(t), len(pruneSegments), "one segment per commit")

	// A cold node: what a query fetches is what lands in its cache.
	cold := func() (*duckdb.Store, *prometheus.Registry, string) {
		reg, dir := prometheus.NewRegistry(), t.TempDir()
		return c.node(t, nodeOpts{registry: reg, cacheDir: dir}), reg, dir
	}
	n, reg, dir := cold()
	want := ns(t, local, "host:a", "")
	require.Len(t, want, 2*prunePer, "segments 0 (a) and 2 (A/1)")
	require.Equal(t, want, ns(t, n, "host:a", ""))
	searched, pruned := segmentsQueried(t, reg)
	require.Equal(t, 2, searched, "host:a reads the segments of a and A/1")
	require.Equal(t, len(pruneSegments)-2, pruned)
	require.Equal(t, 2, cachedSegments(t, dir), "only they were fetched")

	for _, q := range []struct {
		query, topic string
		searched     int
	}{
		{"host:A", "", 2},                  // another case: the same segments
		{"host:a and status:404", "", 1},   // both constraints
		{"host:a or status:500", "", 3},    // either
		{"__tag__:region:us", "", 2},       // tags
		{"status > 400", "", 2},            // 500 and 404
		{"status in [201 203]", "", 3},     // listed numbers
		{"code:200", "", 3},                // numbers as text
		{"user:u7", "", 1},                 // too many users to list; the others have none
		{"__topic__:t1 and host:b", "", 0}, // b is in t2
		{"host:b", "t2", 1},                // the topic parameter
		{"host:a", "t2", 0},
		{"not host:a", "", len(pruneSegments)},       // not: no pruning
		{"a", "", len(pruneSegments)},                // full text: no pruning
		{"request and from", "", len(pruneSegments)}, // full text only
		{"host:*", "", len(pruneSegments)},
	} {
		n, reg, dir := cold()
		want := ns(t, local, q.query, q.topic)
		require.Equal(t, want, ns(t, n, q.query, q.topic), "%q topic %q: the same logs as without statistics", q.query, q.topic)
		searched, pruned := segmentsQueried(t, reg)
		require.Equal(t, q.searched, searched, "%q topic %q: segments searched", q.query, q.topic)
		require.Equal(t, len(pruneSegments)-q.searched, pruned, "%q topic %q: segments pruned", q.query, q.topic)
		require.Equal(t, q.searched, cachedSegments(t, dir), "%q topic %q: segments fetched", q.query, q.topic)
	}
	// SQL and histograms prune too.
	n, reg, _ = cold()
	res, err := n.Search(ctx, "p", "l", store.SearchRequest{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour),
		Query: "host:b | select count(*) as c"})
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(prunePer), res.Rows[0][0].Value)
	hist, err := n.Histogram(ctx, "p", "l", store.HistogramRequest{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), Query: "host:b"})
	require.NoError(t, err)
	total := int64(0)
	for _, b := range hist {
		total += b.Count
	}
	require.EqualValues(t, prunePer, total)
	searched, pruned = segmentsQueried(t, reg)
	require.Equal(t, 2, searched)
	require.Equal(t, 2*(len(pruneSegments)-1), pruned)

	// Compaction merges the eight segments into one; its statistics are
	// the union.
	pool, err := pgxpool.New(ctx, c.dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	c.node(t, nodeOpts{maintenance: 100 * time.Millisecond})
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM store_segments").Scan(&n))
		return n == 1
	}, 60*time.Second, 50*time.Millisecond, "the segments are merged")
	for _, q := range []struct {
		query    string
		searched int
	}{{"host:a", 1}, {"host:zzz", 0}, {"status > 1000", 0}, {"__tag__:region:ap", 1}, {"__tag__:zone:x", 0}, {"user:u7", 1}} {
		n, reg, _ := cold()
		require.Equal(t, ns(t, local, q.query, ""), ns(t, n, q.query, ""), q.query)
		searched, pruned := segmentsQueried(t, reg)
		require.Equal(t, q.searched, searched, q.query)
		require.Equal(t, 1-q.searched, pruned, q.query)
	}
}
