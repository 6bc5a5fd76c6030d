package query

import (
	"database/sql"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/index"
)

func (l testLog) matchLog() *Log {
	out := &Log{Time: l.time, Topic: l.topic, Source: l.source}
	for k, v := range l.tags {
		out.Tags = append(out.Tags, KV{k, v})
	}
	for _, kv := range l.keys {
		out.Contents = append(out.Contents, KV{kv[0], kv[1]})
	}
	return out
}

// TestMatcherCases runs the search cases of the DuckDB tests through the
// Matcher (on the typed-columns layout: keys without a field index of
// their own are left out, as there).
func TestMatcherCases(t *testing.T) {
	idx := testIndex()
	for _, c := range searchCases {
		if strings.HasPrefix(c.q, "host:") || c.q == "nokey:x" || c.q == `empty:""` {
			continue
		}
		t.Run(c.q, func(t *testing.T) {
			q, err := Parse(c.q)
			require.NoError(t, err)
			m, err := NewMatcher(q.Search, idx)
			require.NoError(t, err)
			got := []int{}
			for _, l := range testLogs {
				if m.Match(l.matchLog()) {
					got = append(got, l.id)
				}
			}
			require.Equal(t, c.want, got)
		})
	}
	q, _ := Parse(`x and nokey:1`)
	_, err := NewMatcher(q.Search, idx)
	require.EqualError(t, err, `syntax error at 6: key "nokey" has no field index: add it to the logstore's index to search it`)
}

// typedTable creates table t in the typed-columns layout (as
// server/store/duckdb writes it: typed values parsed as at ingestion)
// holding logs.
func typedTable(t *testing.T, db *sql.DB, idx *index.Config, logs []testLog) {
	t.Helper()
	_, err := db.Exec(`CREATE OR REPLACE TABLE t (id INTEGER, __time__ BIGINT, __topic__ VARCHAR, __source__ VARCHAR, __line__ VARCHAR, tags VARCHAR,
		level VARCHAR, msg VARCHAR, status BIGINT, latency DOUBLE, "user" VARCHAR, j VARCHAR)`)
	require.NoError(t, err)
	tok := LineTokenizer(idx)
	for _, l := range logs {
		var line []byte
		last := map[string]string{}
		for _, kv := range l.keys {
			line = tok.AppendValue(line, kv[1])
			last[kv[0]] = kv[1]
		}
		tags := "{}"
		if len(l.tags) > 0 {
			b, _ := json.Marshal(l.tags)
			tags = string(b)
		}
		col := func(k string) any {
			v, ok := last[k]
			if !ok {
				return nil
			}
			return v
		}
		var status, latency any
		if v, ok := last["status"]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				status = n
			} else if f, err := strconv.ParseFloat(v, 64); err == nil {
				status = int64(f)
			}
		}
		if v, ok := last["latency"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				latency = f
			}
		}
		_, err := db.Exec(`INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, l.id, l.time, l.topic, l.source, string(line), tags,
			col("level"), col("msg"), status, latency, col("user"), col("j"))
		require.NoError(t, err)
	}
}

// TestMatcherAgreesWithDuckDB checks, on random logs and random searches,
// that the Matcher matches exactly the logs the compiled search selects
// in DuckDB on the store's layout.
func TestMatcherAgreesWithDuckDB(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	idx := testIndex()
	logs := randomLogs(r, 200)
	db, err := sql.Open("duckdb", "")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	typedTable(t, db, idx, logs)
	s := TypedColumnsSchema(idx, ColLine, "tags")

	expr := randomSearch(r)
	checked := 0
	for range 400 {
		text := expr(3)
		q, err := Parse(text)
		if err != nil {
			continue
		}
		where, cerr := CompileSearch(q.Search, s)
		m, merr := NewMatcher(q.Search, idx)
		if cerr != nil {
			require.Error(t, merr, text)
			continue
		}
		require.NoError(t, merr, text)
		want := matchIDs(t, db, where)
		got := []int{}
		for _, l := range logs {
			if m.Match(l.matchLog()) {
				got = append(got, l.id)
			}
		}
		require.Equal(t, want, got, "%s\n%s %v", text, where.SQL, where.Args)
		checked++
	}
	require.Greater(t, checked, 200, "most random searches compile")
}

// searchWords are the words of random logs and searches ("" last).
var searchWords = []string{"error", "Error", "GET", "api", "v1", "orders", "users", "disk", "full", "db", "5432", "alice", "Alice", "bob", "x-y", "a.b", "日志", "login", "ok", ""}

// randomLogs returns n random logs over testIndex's keys.
func randomLogs(r *rand.Rand, n int) []testLog {
	words := searchWords
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	logs := make([]testLog, n)
	for i := range logs {
		l := testLog{id: i, time: 1000 + int64(r.IntN(100)), topic: pick([]string{"web", "sys", ""}), source: pick([]string{"10.0.0.1", "10.0.1.2", "h"}), tags: map[string]string{}}
		if r.IntN(2) == 0 {
			l.tags["__path__"] = pick([]string{"/var/log/app.log", "/var/log/web.log", ""})
		}
		for k := range r.IntN(7) {
			switch k % 6 {
			case 0:
				l.keys = append(l.keys, [2]string{"level", pick([]string{"error", "ERROR", "info", "warn", ""})})
			case 1:
				var ws []string
				for range 1 + r.IntN(4) {
					ws = append(ws, pick(words))
				}
				l.keys = append(l.keys, [2]string{"msg", strings.Join(ws, pick([]string{" ", "/", ": ", "="}))})
			case 2:
				l.keys = append(l.keys, [2]string{"status", pick([]string{"200", "404", "500", "502", "2e2", "abc", "", " 200"})})
			case 3:
				l.keys = append(l.keys, [2]string{"latency", pick([]string{"0.5", "1", "30", "1e1", "-2", "nan", "x"})})
			case 4:
				l.keys = append(l.keys, [2]string{"user", pick([]string{"Alice", "alice", "bob"})})
			case 5:
				l.keys = append(l.keys, [2]string{"j", pick([]string{`{"a":{"b":"deep value"},"n":5}`, `{"n":"7"}`, `{"a":1}`, `{"n":null}`})})
			}
		}
		if r.IntN(5) == 0 {
			l.keys = append(l.keys, [2]string{"other", pick(words)}) // not indexed: full text only
		}
		logs[i] = l
	}
	return logs
}

// randomSearch returns a generator of random searches (of up to depth
// levels of and, or, not) over randomLogs' keys and words.
func randomSearch(r *rand.Rand) func(depth int) string {
	words := searchWords
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	leaf := func() string {
		w := pick(words[:len(words)-1])
		switch r.IntN(14) {
		case 0:
			return w
		case 1:
			return `"` + w + " " + pick(words[:len(words)-1]) + `"`
		case 2:
			return w[:1+r.IntN(len(w))] + "*"
		case 3:
			return "level:" + pick([]string{"error", "ERR*", "info", `""`, "*"})
		case 4:
			return "msg:" + pick([]string{w, `"` + w + " " + pick(words[:len(words)-1]) + `"`, w + "*", "*"})
		case 5:
			return "status" + pick([]string{":200", " > 200", " >= 404", " < 500", " = 500", " in [200 500)", " in (404 *]", ":*"})
		case 6:
			return "latency" + pick([]string{" < 1", " >= 0.5", " in [1 30]", ":1", ":*"})
		case 7:
			return "user:" + pick([]string{"Alice", "alice", "A*"})
		case 8:
			return "__tag__:__path__:" + pick([]string{"/var/log/app.log", "*", `""`, "web*"})
		case 9:
			return "__topic__:" + pick([]string{"web", `""`, "s*"})
		case 10:
			return "__source__:" + pick([]string{"10.0.*", "h", "10.0.0.1"})
		case 11:
			return "j.a.b:" + pick([]string{"deep", "*", "value"})
		case 12:
			return "j.n" + pick([]string{" > 3", " in [5 7]", ":*", ":5"})
		}
		return "__time__" + pick([]string{" >= 1050", " < 1010", " in [1020 1040)"})
	}
	var expr func(depth int) string
	expr = func(depth int) string {
		if depth == 0 || r.IntN(3) == 0 {
			return leaf()
		}
		switch r.IntN(4) {
		case 0:
			return expr(depth-1) + " and " + expr(depth-1)
		case 1:
			return "(" + expr(depth-1) + " or " + expr(depth-1) + ")"
		case 2:
			return "not " + expr(depth-1)
		}
		return expr(depth-1) + " " + expr(depth-1)
	}
	return expr
}
