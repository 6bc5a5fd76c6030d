// Package storetest is the conformance suite every log storage backend
// (server/store/<backend>) must pass: writes, full-text and field search,
// paging and order, SQL analysis, histograms, index changes, retention,
// overload and error classification, shards (ordered groups by cursor). A backend's test calls
//
//	storetest.Run(t, func(t *testing.T, o storetest.Options) store.Store { ... })
//
// Expected results are computed in Go from the written logs, never
// hard-coded.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
)

// Options asks the backend factory for a particular setup.
type Options struct {
	// SmallQueue: bound the ingest queue to about 1 MiB so the overload
	// test can saturate it.
	SmallQueue bool
}

// NewFunc opens a fresh, empty backend; the factory registers its cleanup
// (Close) with t.
type NewFunc func(t *testing.T, o Options) store.Store

// RetentionEnforcer is implemented by backends that drop expired data on
// demand (the suite calls it to check that expiry really removes data).
type RetentionEnforcer interface {
	EnforceRetention(ctx context.Context) error
}

// Run runs the suite.
func Run(t *testing.T, newStore NewFunc) { RunWithout(t, newStore, "") }

// RunWithout runs the suite but skips the named parts, saying why (a
// backend that refuses a feature with a clear error instead of
// implementing it; the skip shows in go test -v).
func RunWithout(t *testing.T, newStore NewFunc, why string, skip ...string) {
	tests := []struct {
		name string
		fn   func(*testing.T, NewFunc)
	}{
		{"WriteSearchAll", testWriteSearchAll},
		{"OrderAndPaging", testOrderAndPaging},
		{"FullText", testFullText},
		{"FieldSearch", testFieldSearch},
		{"TagsSourceTopic", testTagsSourceTopic},
		{"LineIndexOptions", testLineIndexOptions},
		{"TimeRangeAndTopic", testTimeRangeAndTopic},
		{"SQL", testSQL},
		{"Histogram", testHistogram},
		{"IndexChange", testIndexChange},
		{"RandomRoundTrip", testRandomRoundTrip},
		{"TTL", testTTL},
		{"Overload", testOverload},
		{"Errors", testErrors},
		{"DropLogstore", testDropLogstore},
		{"ConcurrentWrites", testConcurrentWrites},
		{"Shards", testShards},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if slices.Contains(skip, tc.name) {
				t.Skip(why)
			}
			tc.fn(t, newStore)
		})
	}
}

const (
	project  = "proj"
	logstore = "nginx"
)

// nginxIndex is a typical index for the nginx fixture.
func nginxIndex() *index.Config {
	return &index.Config{
		Line: &index.LineConfig{Token: index.DefaultTokens()},
		Keys: map[string]index.KeyConfig{
			"status":          {Type: index.TypeLong, DocValue: true},
			"body_bytes_sent": {Type: index.TypeLong, DocValue: true},
			"method":          {Type: index.TypeText, DocValue: true, Token: index.DefaultTokens()},
			"request_uri":     {Type: index.TypeText, DocValue: true, Token: index.DefaultTokens()},
			"http_user_agent": {Type: index.TypeText, DocValue: true, Token: index.DefaultTokens()},
		},
	}
}

// fixture is an nginx group whose logs span [first, first+n) seconds.
func fixture(minSize int) *protocol.LogGroup { return protocoltest.NginxLogGroup(minSize) }

// sentAs is g under its own __pack_id__ (sequence n), as a client sends
// each new group: a store may take a group sent again under the same
// pack id for a re-send and store it once.
func sentAs(g *protocol.LogGroup, n int) []protocol.LogGroup {
	c := *g
	c.LogTags = slices.Clone(g.LogTags)
	for i, t := range c.LogTags {
		if t.Key == "__pack_id__" {
			c.LogTags[i].Value = fmt.Sprintf("5E47A5-%X", n)
		}
	}
	return []protocol.LogGroup{c}
}

func span(g *protocol.LogGroup) (time.Time, time.Time) {
	lo, hi := g.Logs[0].Time, g.Logs[0].Time
	for _, l := range g.Logs {
		lo, hi = min(lo, l.Time), max(hi, l.Time)
	}
	return time.Unix(int64(lo), 0), time.Unix(int64(hi)+1, 0)
}

func value(l *protocol.Log, key string) string {
	for _, c := range l.Contents {
		if c.Key == key {
			return c.Value
		}
	}
	return ""
}

func field(row []store.Field, key string) (string, bool) {
	for _, f := range row {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

func setup(t *testing.T, newStore NewFunc, o Options, idx *index.Config, groups ...*protocol.LogGroup) store.Store {
	t.Helper()
	s := newStore(t, o)
	ctx := context.Background()
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: project, Logstore: logstore, Index: idx}))
	for _, g := range groups {
		require.NoError(t, s.Write(ctx, project, logstore, []protocol.LogGroup{*g}, time.Unix(1709640000, 0)))
	}
	return s
}

// searchAll pages through every match (line 100 per page).
func searchAll(t *testing.T, s store.Store, req store.SearchRequest) [][]store.Field {
	t.Helper()
	var out [][]store.Field
	req.Line = 100
	for req.Offset = 0; ; req.Offset += 100 {
		res, err := s.Search(context.Background(), project, logstore, req)
		require.NoError(t, err, "query %q", req.Query)
		require.False(t, res.HasSQL)
		require.Equal(t, len(res.Rows), res.Count)
		out = append(out, res.Rows...)
		if len(res.Rows) < 100 {
			return out
		}
	}
}

func count(t *testing.T, s store.Store, g *protocol.LogGroup, query string) int {
	t.Helper()
	from, to := span(g)
	return len(searchAll(t, s, store.SearchRequest{From: from, To: to, Query: query}))
}

func testWriteSearchAll(t *testing.T, newStore NewFunc) {
	g := fixture(64 << 10)
	s := setup(t, newStore, Options{}, nginxIndex(), g)
	from, to := span(g)
	for _, q := range []string{"", "*"} {
		rows := searchAll(t, s, store.SearchRequest{From: from, To: to, Query: q})
		require.Len(t, rows, len(g.Logs), "query %q", q)
	}
	rows := searchAll(t, s, store.SearchRequest{From: from, To: to, Query: "*"})
	// Ascending order: row i is log i (the fixture's times increase).
	for i, row := range rows {
		l := &g.Logs[i]
		v, _ := field(row, "__time__")
		require.Equal(t, strconv.FormatUint(uint64(l.Time), 10), v)
		v, _ = field(row, "__topic__")
		require.Equal(t, g.Topic, v)
		v, _ = field(row, "__source__")
		require.Equal(t, g.Source, v)
		for _, tag := range g.LogTags {
			v, ok := field(row, "__tag__:"+tag.Key)
			require.True(t, ok, "tag %s", tag.Key)
			require.Equal(t, tag.Value, v)
		}
		v, _ = field(row, "__tag__:__receive_time__")
		require.Equal(t, "1709640000", v)
		for _, c := range l.Contents {
			v, ok := field(row, c.Key)
			require.True(t, ok, "key %s", c.Key)
			require.Equal(t, c.Value, v)
		}
	}
}

func testOrderAndPaging(t *testing.T, newStore NewFunc) {
	g := fixture(32 << 10)
	s := setup(t, newStore, Options{}, nginxIndex(), g)
	from, to := span(g)
	ctx := context.Background()
	n := len(g.Logs)
	require.Greater(t, n, 30)
	// Newest first.
	res, err := s.Search(ctx, project, logstore, store.SearchRequest{From: from, To: to, Query: "*", Line: 10, Reverse: true})
	require.NoError(t, err)
	require.Len(t, res.Rows, 10)
	for i, row := range res.Rows {
		v, _ := field(row, "__time__")
		require.Equal(t, strconv.FormatUint(uint64(g.Logs[n-1-i].Time), 10), v)
	}
	// Offset past some rows, oldest first.
	res, err = s.Search(ctx, project, logstore, store.SearchRequest{From: from, To: to, Query: "*", Line: 5, Offset: 20})
	require.NoError(t, err)
	require.Len(t, res.Rows, 5)
	v, _ := field(res.Rows[0], "__time__")
	require.Equal(t, strconv.FormatUint(uint64(g.Logs[20].Time), 10), v)
	// Offset beyond the end.
	res, err = s.Search(ctx, project, logstore, store.SearchRequest{From: from, To: to, Query: "*", Line: 5, Offset: n + 10})
	require.NoError(t, err)
	require.Empty(t, res.Rows)
}

func testFullText(t *testing.T, newStore NewFunc) {
	g := fixture(128 << 10)
	s := setup(t, newStore, Options{}, nginxIndex(), g)
	var curl, post, curlOrPost, notGet, kube int
	for i := range g.Logs {
		l := &g.Logs[i]
		ua := value(l, "http_user_agent")
		m := value(l, "method")
		isCurl := strings.HasPrefix(ua, "curl/")
		if isCurl {
			curl++
		}
		if m == "POST" {
			post++
		}
		if isCurl || m == "POST" {
			curlOrPost++
		}
		if m != "GET" {
			notGet++
		}
		if strings.HasPrefix(ua, "kube-probe/") {
			kube++
		}
	}
	require.NotZero(t, curl)
	require.NotZero(t, post)
	require.Equal(t, curl, count(t, s, g, "curl"))
	require.Equal(t, curl, count(t, s, g, "CURL"), "full text is case-insensitive by default")
	require.Equal(t, post, count(t, s, g, "post"))
	require.Equal(t, curlOrPost, count(t, s, g, "curl or post"))
	require.Equal(t, notGet, count(t, s, g, "not get"))
	require.Equal(t, kube, count(t, s, g, `"kube-probe"`))
	require.Equal(t, kube, count(t, s, g, "kube*"))
	require.Zero(t, count(t, s, g, "nomatchxyz"))
	require.Zero(t, count(t, s, g, "cur"), "terms match whole tokens")
}

func testFieldSearch(t *testing.T, newStore NewFunc) {
	g := fixture(64 << 10)
	s := setup(t, newStore, Options{}, nginxIndex(), g)
	counts := map[string]int{}
	for i := range g.Logs {
		counts[value(&g.Logs[i], "status")]++
	}
	require.Greater(t, len(counts), 1)
	for status, n := range counts {
		require.Equal(t, n, count(t, s, g, "status:"+status), "status %s", status)
	}
	var getOrders int
	for i := range g.Logs {
		if value(&g.Logs[i], "method") == "GET" && strings.Contains(value(&g.Logs[i], "request_uri"), "/orders") {
			getOrders++
		}
	}
	require.NotZero(t, getOrders)
	require.Equal(t, getOrders, count(t, s, g, "method:GET and request_uri:orders"))
	require.Equal(t, len(g.Logs), count(t, s, g, "status:*"))
}

func testTimeRangeAndTopic(t *testing.T, newStore NewFunc) {
	g := fixture(32 << 10)
	other := fixture(8 << 10)
	other.Topic = "other-topic"
	s := setup(t, newStore, Options{}, nginxIndex(), g, other)
	ctx := context.Background()
	from, to := span(g)
	// [from+10, from+20) holds exactly the logs with those times.
	lo, hi := from.Add(10*time.Second), from.Add(20*time.Second)
	want := 0
	for _, gg := range []*protocol.LogGroup{g, other} {
		for _, l := range gg.Logs {
			if int64(l.Time) >= lo.Unix() && int64(l.Time) < hi.Unix() {
				want++
			}
		}
	}
	rows := searchAll(t, s, store.SearchRequest{From: lo, To: hi, Query: "*"})
	require.Len(t, rows, want)
	rows = searchAll(t, s, store.SearchRequest{From: from, To: to, Query: "*", Topic: "other-topic"})
	require.Len(t, rows, len(other.Logs))
	rows = searchAll(t, s, store.SearchRequest{From: from, To: to, Query: "__topic__:other-topic"})
	require.Len(t, rows, len(other.Logs))
	res, err := s.Search(ctx, project, logstore, store.SearchRequest{From: to.Add(time.Hour), To: to.Add(2 * time.Hour), Query: "*"})
	require.NoError(t, err)
	require.Empty(t, res.Rows)
}

func testSQL(t *testing.T, newStore NewFunc) {
	g := fixture(128 << 10)
	s := setup(t, newStore, Options{}, nginxIndex(), g)
	from, to := span(g)
	want := map[string]int{}
	bytes := map[string]int64{}
	for i := range g.Logs {
		st := value(&g.Logs[i], "status")
		want[st]++
		b, _ := strconv.ParseInt(value(&g.Logs[i], "body_bytes_sent"), 10, 64)
		bytes[st] += b
	}
	res, err := s.Search(context.Background(), project, logstore, store.SearchRequest{From: from, To: to,
		Query: "* | select status, count(*) as pv, sum(body_bytes_sent) as b group by status order by status"})
	require.NoError(t, err)
	require.True(t, res.HasSQL)
	require.Equal(t, []string{"status", "pv", "b"}, columnNames(res.Columns))
	require.Len(t, res.Rows, len(want))
	prev := -1
	for _, row := range res.Rows {
		st, _ := field(row, "status")
		pv, _ := field(row, "pv")
		b, _ := field(row, "b")
		require.Equal(t, strconv.Itoa(want[st]), pv, "status %s", st)
		require.Equal(t, strconv.FormatInt(bytes[st], 10), b, "status %s", st)
		n, err := strconv.Atoi(st)
		require.NoError(t, err)
		require.Greater(t, n, prev, "ORDER BY status")
		prev = n
	}
	// The search part filters what the SQL sees.
	res, err = s.Search(context.Background(), project, logstore, store.SearchRequest{From: from, To: to,
		Query: "status:" + firstKey(want) + " | select count(*) as c"})
	require.NoError(t, err)
	require.Len(t, res.Rows, 1)
	c, _ := field(res.Rows[0], "c")
	require.Equal(t, strconv.Itoa(want[firstKey(want)]), c)
}

func firstKey(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys[0]
}

func columnNames(cols []store.Column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Name
	}
	return out
}

func testHistogram(t *testing.T, newStore NewFunc) {
	g := fixture(64 << 10)
	s := setup(t, newStore, Options{}, nginxIndex(), g)
	from, to := span(g)
	const step = 7 * time.Second
	buckets, err := s.Histogram(context.Background(), project, logstore, store.HistogramRequest{From: from, To: to, Query: "curl", Interval: step})
	require.NoError(t, err)
	want := map[int64]int64{}
	for i := range g.Logs {
		if strings.HasPrefix(value(&g.Logs[i], "http_user_agent"), "curl/") {
			want[(int64(g.Logs[i].Time)-from.Unix())/int64(step/time.Second)]++
		}
	}
	require.Len(t, buckets, int((to.Sub(from)+step-1)/step))
	var total int64
	for i, b := range buckets {
		require.Equal(t, from.Add(time.Duration(i)*step).Unix(), b.From.Unix())
		require.Equal(t, want[int64(i)], b.Count, "bucket %d", i)
		total += b.Count
	}
	require.EqualValues(t, count(t, s, g, "curl"), total)
	require.Equal(t, to.Unix(), buckets[len(buckets)-1].To.Unix())
	// Default interval: about 60 buckets covering the range.
	buckets, err = s.Histogram(context.Background(), project, logstore, store.HistogramRequest{From: from, To: to, Query: "*"})
	require.NoError(t, err)
	require.LessOrEqual(t, len(buckets), 61)
	total = 0
	for _, b := range buckets {
		total += b.Count
	}
	require.EqualValues(t, len(g.Logs), total)
}

func testIndexChange(t *testing.T, newStore NewFunc) {
	old := fixture(16 << 10)
	s := setup(t, newStore, Options{}, &index.Config{Line: &index.LineConfig{Token: index.DefaultTokens()}}, old)
	ctx := context.Background()
	from, to := span(old)
	_, err := s.Search(ctx, project, logstore, store.SearchRequest{From: from, To: to, Query: "* | select status, count(*) group by status"})
	require.ErrorIs(t, err, store.ErrInvalidQuery, "status has no field index yet")

	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: project, Logstore: logstore, Index: nginxIndex()}))
	g := fixture(16 << 10)
	for i := range g.Logs {
		g.Logs[i].Time += 3600 // an hour later than the old logs
	}
	require.NoError(t, s.Write(ctx, project, logstore, []protocol.LogGroup{*g}, time.Now()))
	res, err := s.Search(ctx, project, logstore, store.SearchRequest{From: from, To: to.Add(2 * time.Hour),
		Query: "* | select count(*) as c, count(status) as s"})
	require.NoError(t, err)
	c, _ := field(res.Rows[0], "c")
	st, _ := field(res.Rows[0], "s")
	require.Equal(t, strconv.Itoa(len(old.Logs)+len(g.Logs)), c)
	// Existing rows are not backfilled; new rows have the column.
	require.Equal(t, strconv.Itoa(len(g.Logs)), st)
	// Full text still covers everything.
	require.Len(t, searchAll(t, s, store.SearchRequest{From: from, To: to.Add(2 * time.Hour), Query: "*"}), len(old.Logs)+len(g.Logs))
}

func testRandomRoundTrip(t *testing.T, newStore NewFunc) {
	s := setup(t, newStore, Options{}, nil)
	r := rand.New(rand.NewPCG(7, 8))
	var want []string
	ctx := context.Background()
	base := uint32(1709632800)
	for range 20 {
		g := protocoltest.RandomLogGroup(r)
		for i := range g.Logs {
			g.Logs[i].Time = base + uint32(r.IntN(3*86400)) // three days: several partitions
			var b strings.Builder
			for _, c := range g.Logs[i].Contents {
				fmt.Fprintf(&b, "%q=%q;", c.Key, c.Value)
			}
			want = append(want, strconv.FormatUint(uint64(g.Logs[i].Time), 10)+"|"+b.String())
		}
		require.NoError(t, s.Write(ctx, project, logstore, []protocol.LogGroup{*g}, time.Now()))
	}
	rows := searchAll(t, s, store.SearchRequest{From: time.Unix(int64(base), 0), To: time.Unix(int64(base)+4*86400, 0), Query: "*"})
	var got []string
	for _, row := range rows {
		var b strings.Builder
		tm, _ := field(row, "__time__")
		for _, f := range row {
			if strings.HasPrefix(f.Key, "__") && (f.Key == "__time__" || f.Key == "__time_ns_part__" || f.Key == "__source__" || f.Key == "__topic__" || strings.HasPrefix(f.Key, "__tag__:")) {
				continue
			}
			fmt.Fprintf(&b, "%q=%q;", f.Key, f.Value)
		}
		got = append(got, tm+"|"+b.String())
	}
	slices.Sort(want)
	slices.Sort(got)
	require.Equal(t, want, got, "keys and values (any bytes) come back exactly as written")
}

func testTTL(t *testing.T, newStore NewFunc) {
	s := newStore(t, Options{})
	ctx := context.Background()
	spec := func(ttl int) store.LogstoreSpec {
		return store.LogstoreSpec{Project: project, Logstore: logstore, TTLDays: ttl, Index: nginxIndex()}
	}
	require.NoError(t, s.EnsureLogstore(ctx, spec(0)))
	now := time.Now()
	mk := func(age time.Duration, n int) *protocol.LogGroup {
		g := fixture(4 << 10)
		g.Logs = g.Logs[:n]
		for i := range g.Logs {
			g.Logs[i].Time = uint32(now.Add(-age).Unix())
		}
		return g
	}
	oldG, newG := mk(10*24*time.Hour, 5), mk(time.Minute, 7)
	require.NoError(t, s.Write(ctx, project, logstore, []protocol.LogGroup{*oldG, *newG}, now))
	req := store.SearchRequest{From: now.Add(-30 * 24 * time.Hour), To: now.Add(time.Hour), Query: "*"}
	require.Len(t, searchAll(t, s, req), len(oldG.Logs)+len(newG.Logs), "ttl 0 keeps everything")

	require.NoError(t, s.EnsureLogstore(ctx, spec(3)))
	require.Len(t, searchAll(t, s, req), len(newG.Logs), "logs older than the ttl are not returned")
	// Logs already past the ttl when written are not returned either.
	require.NoError(t, s.Write(ctx, project, logstore, []protocol.LogGroup{*mk(5*24*time.Hour, 3)}, now))
	require.Len(t, searchAll(t, s, req), len(newG.Logs))
	if re, ok := s.(RetentionEnforcer); ok {
		require.NoError(t, re.EnforceRetention(ctx))
		require.Len(t, searchAll(t, s, req), len(newG.Logs))
		// The data is really gone: raising the ttl does not bring it back.
		require.NoError(t, s.EnsureLogstore(ctx, spec(30)))
		require.Len(t, searchAll(t, s, req), len(newG.Logs))
	}
}

func testOverload(t *testing.T, newStore NewFunc) {
	s := setup(t, newStore, Options{SmallQueue: true}, nginxIndex())
	ctx := context.Background()
	g := fixture(512 << 10)
	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		ok, overloaded int
		unexpected     []error
	)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				err := s.Write(ctx, project, logstore, sentAs(g, w*4+i), time.Now())
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, store.ErrOverloaded):
					overloaded++
				default:
					unexpected = append(unexpected, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Empty(t, unexpected)
	require.NotZero(t, overloaded, "64 concurrent 512 KiB writes must saturate a 1 MiB queue")
	require.NotZero(t, ok)
	// Every acknowledged write is stored, nothing more.
	res, err := s.Search(ctx, project, logstore, store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: "* | select count(*) as c"})
	require.NoError(t, err)
	c, _ := field(res.Rows[0], "c")
	require.Equal(t, strconv.Itoa(ok*len(g.Logs)), c)
	// Once the queue drains, writes succeed again.
	require.NoError(t, s.Write(ctx, project, logstore, []protocol.LogGroup{*g}, time.Now()))
}

func testErrors(t *testing.T, newStore NewFunc) {
	g := fixture(4 << 10)
	s := setup(t, newStore, Options{}, nginxIndex(), g)
	ctx := context.Background()
	from, to := span(g)
	err := s.Write(ctx, project, "missing", []protocol.LogGroup{*g}, time.Now())
	require.ErrorIs(t, err, store.ErrLogstoreNotFound)
	_, err = s.Search(ctx, "nope", logstore, store.SearchRequest{From: from, To: to, Query: "*"})
	require.ErrorIs(t, err, store.ErrLogstoreNotFound)
	_, err = s.Histogram(ctx, project, "missing", store.HistogramRequest{From: from, To: to})
	require.ErrorIs(t, err, store.ErrLogstoreNotFound)
	require.ErrorIs(t, s.DropLogstore(ctx, project, "missing"), store.ErrLogstoreNotFound)
	for _, q := range []string{
		"* | selec status",                          // SQL syntax
		"* | select nosuchcolumn",                   // no field index
		"* | select count(*) from sluice_logstores", // other tables are not reachable
		"(curl",       // unbalanced
		"nosuchkey:1", // key without field index
	} {
		_, err = s.Search(ctx, project, logstore, store.SearchRequest{From: from, To: to, Query: q})
		require.ErrorIs(t, err, store.ErrInvalidQuery, "query %q", q)
	}
	// An empty write is fine.
	require.NoError(t, s.Write(ctx, project, logstore, nil, time.Now()))
}

func testDropLogstore(t *testing.T, newStore NewFunc) {
	g := fixture(8 << 10)
	s := setup(t, newStore, Options{}, nginxIndex(), g)
	ctx := context.Background()
	require.NoError(t, s.DropLogstore(ctx, project, logstore))
	from, to := span(g)
	_, err := s.Search(ctx, project, logstore, store.SearchRequest{From: from, To: to, Query: "*"})
	require.ErrorIs(t, err, store.ErrLogstoreNotFound)
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: project, Logstore: logstore, Index: nginxIndex()}))
	require.Empty(t, searchAll(t, s, store.SearchRequest{From: from, To: to, Query: "*"}), "a recreated logstore starts empty")
}

func testConcurrentWrites(t *testing.T, newStore NewFunc) {
	s := setup(t, newStore, Options{}, nginxIndex())
	ctx := context.Background()
	g := fixture(16 << 10)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- s.Write(ctx, project, logstore, sentAs(g, w*each+i), time.Now())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	from, to := span(g)
	res, err := s.Search(ctx, project, logstore, store.SearchRequest{From: from, To: to, Query: "* | select count(*) as c"})
	require.NoError(t, err)
	c, _ := field(res.Rows[0], "c")
	require.Equal(t, strconv.Itoa(writers*each*len(g.Logs)), c)
}

func testTagsSourceTopic(t *testing.T, newStore NewFunc) {
	g := fixture(16 << 10)
	other := fixture(4 << 10)
	other.Source, other.LogTags = "192.168.9.9", []protocol.LogTag{{Key: "__path__", Value: "/var/log/other.log"}}
	s := setup(t, newStore, Options{}, nginxIndex(), g, other)
	require.Equal(t, len(g.Logs), count(t, s, g, `__tag__:__path__:"/var/log/nginx/access.log"`))
	require.Equal(t, len(other.Logs), count(t, s, g, `__tag__:__path__:"/var/log/other.log"`))
	require.Equal(t, len(other.Logs), count(t, s, g, "__source__:192.168.9.9"))
	require.Equal(t, len(g.Logs)+len(other.Logs), count(t, s, g, "__topic__:nginx-access"))
	require.Equal(t, len(g.Logs), count(t, s, g, "not __source__:192.168.9.9"))
}

func testLineIndexOptions(t *testing.T, newStore NewFunc) {
	g := fixture(16 << 10)
	var curl int
	for i := range g.Logs {
		if strings.HasPrefix(value(&g.Logs[i], "http_user_agent"), "curl/") {
			curl++
		}
	}
	require.NotZero(t, curl)
	t.Run("CaseSensitive", func(t *testing.T) {
		idx := nginxIndex()
		idx.Line.CaseSensitive = true
		s := setup(t, newStore, Options{}, idx, g)
		require.Equal(t, curl, count(t, s, g, "curl"))
		require.Zero(t, count(t, s, g, "CURL"))
	})
	t.Run("IncludeKeys", func(t *testing.T) {
		idx := nginxIndex()
		idx.Line.IncludeKeys = []string{"method"}
		s := setup(t, newStore, Options{}, idx, g)
		require.Zero(t, count(t, s, g, "curl"), "http_user_agent is not in the line index")
		require.NotZero(t, count(t, s, g, "get"))
	})
	t.Run("ExcludeKeys", func(t *testing.T) {
		idx := nginxIndex()
		idx.Line.ExcludeKeys = []string{"http_user_agent"}
		s := setup(t, newStore, Options{}, idx, g)
		require.Zero(t, count(t, s, g, "curl"))
		require.NotZero(t, count(t, s, g, "get"))
	})
	t.Run("NoLineIndex", func(t *testing.T) {
		idx := nginxIndex()
		idx.Line = nil
		s := setup(t, newStore, Options{}, idx, g)
		from, to := span(g)
		_, err := s.Search(context.Background(), project, logstore, store.SearchRequest{From: from, To: to, Query: "curl"})
		require.ErrorIs(t, err, store.ErrInvalidQuery, "full-text search needs a line index")
		require.Equal(t, len(g.Logs), count(t, s, g, "status:*"), "field search still works")
	})
}
