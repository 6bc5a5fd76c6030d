package query

import (
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
)

type testLog struct {
	id     int
	time   int64
	topic  string
	source string
	tags   map[string]string
	keys   [][2]string // content, in order
}

var testLogs = []testLog{
	{1, 1000, "web", "10.0.0.1", map[string]string{"__path__": "/var/log/app.log"}, [][2]string{
		{"level", "ERROR"}, {"msg", "GET /api/v1/orders failed"}, {"status", "500"}, {"latency", "1.25"}, {"user", "Alice"}}},
	{2, 1010, "web", "10.0.0.2", map[string]string{"__path__": "/var/log/web.log"}, [][2]string{
		{"level", "info"}, {"msg", "GET /api/v1/users ok"}, {"status", "200"}, {"latency", "0.05"}, {"user", "bob"}, {"host", "Web-01"}}},
	{3, 1060, "sys", "10.1.0.1", map[string]string{"host": "h1"}, [][2]string{
		{"level", "warn"}, {"msg", "disk almost full"}, {"status", "200"}, {"latency", "0.5"}}},
	{4, 1200, "", "10.0.0.3", nil, [][2]string{
		{"level", "error"}, {"msg", "connection refused: db:5432"}, {"status", "502"}, {"latency", "30"}}},
	{5, 1300, "web", "10.2.0.1", nil, [][2]string{{"msg", "and or not keywords"}, {"empty", ""}}},
	{6, 1400, "", "10.2.0.2", nil, [][2]string{{"level", "info"}, {"msg", "user=Alice action=login"}, {"status", "abc"}}},
	{7, 1500, "", "10.2.0.3", nil, [][2]string{{"j", `{"a":{"b":"deep value"},"n":5}`}, {"msg", "json log*"}}},
}

func testIndex() *index.Config {
	return &index.Config{
		Line: &index.LineConfig{Token: index.DefaultTokens()},
		Keys: map[string]index.KeyConfig{
			"level":   {Type: index.TypeText, DocValue: true},
			"msg":     {Type: index.TypeText, DocValue: true},
			"status":  {Type: index.TypeLong, DocValue: true},
			"latency": {Type: index.TypeDouble, DocValue: true},
			"user":    {Type: index.TypeText, CaseSensitive: true, DocValue: true},
			"j": {Type: index.TypeJSON, JSONKeys: map[string]index.KeyConfig{
				"n": {Type: index.TypeLong},
			}},
		},
	}
}

// openDefault creates table t in the default layout (DefaultTableDDL)
// holding testLogs.
func openDefault(t *testing.T, idx *index.Config) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec("CREATE TABLE t " + strings.TrimSuffix(DefaultTableDDL, ")") + ", id INTEGER)")
	require.NoError(t, err)
	_, err = db.Exec("SET enable_external_access = false")
	require.NoError(t, err)
	_, err = db.Exec("SET TimeZone = 'UTC'") // date_trunc on timestamptz follows it
	require.NoError(t, err)
	tok := LineTokenizer(idx)
	for _, l := range testLogs {
		fields := map[string]string{}
		var line []byte
		for _, kv := range l.keys {
			fields[kv[0]] = kv[1]
			line = tok.AppendValue(line, kv[1])
		}
		fj, _ := json.Marshal(fields)
		if l.tags == nil {
			l.tags = map[string]string{}
		}
		tj, _ := json.Marshal(l.tags)
		_, err := db.Exec(`INSERT INTO t VALUES (?, 0, ?, ?, CAST(CAST(? AS JSON) AS MAP(VARCHAR, VARCHAR)),
			CAST(CAST(? AS JSON) AS MAP(VARCHAR, VARCHAR)), ?, ?)`,
			l.time, l.topic, l.source, string(tj), string(fj), string(line), l.id)
		require.NoError(t, err)
	}
	return db
}

func matchIDs(t *testing.T, db *sql.DB, where Expr) []int {
	t.Helper()
	rows, err := db.Query("SELECT id FROM t WHERE "+where.SQL+" ORDER BY id", where.Args...)
	require.NoError(t, err, where.SQL)
	defer rows.Close()
	ids := []int{}
	for rows.Next() {
		var id int
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())
	return ids
}

var searchCases = []struct {
	q    string
	want []int
}{
	{``, []int{1, 2, 3, 4, 5, 6, 7}},
	{`*`, []int{1, 2, 3, 4, 5, 6, 7}},
	{`error`, []int{1, 4}},
	{`ERROR`, []int{1, 4}},
	{`get`, []int{1, 2}},
	{`"api v1"`, []int{1, 2}},
	{`"v1 api"`, []int{}},
	{`/api/v1/orders`, []int{1}},
	{`ord*`, []int{1}},
	{`or*`, []int{1, 5}},
	{`us?rs`, []int{2}},
	{`a*ice`, []int{1, 6}},
	{`api/v*`, []int{1, 2}},
	{`alice`, []int{1, 6}},
	{`"and"`, []int{5}},
	{`error not refused`, []int{1}},
	{`NOT error AND NOT info`, []int{3, 5, 7}},
	{`(error or warn) and not status:502`, []int{1, 3}},
	{`level:error`, []int{1, 4}},
	{`level:ERR*`, []int{1, 4}},
	{`level:error and status:500`, []int{1}},
	{`level:error or level:warn`, []int{1, 3, 4}},
	{`not level:error`, []int{2, 3, 5, 6, 7}},
	{`level:*`, []int{1, 2, 3, 4, 6}},
	{`empty:""`, []int{5}},
	{`msg:"connection refused"`, []int{4}},
	{`msg:"refused connection"`, []int{}},
	{`msg:refused`, []int{4}},
	{`msg:db:5432`, []int{4}},
	{`msg:"db:5432"`, []int{4}},
	{`msg:fu?l`, []int{3}},
	{`msg:v1`, []int{1, 2}},
	{`msg:api/v1/users`, []int{2}},
	{`user:Alice`, []int{1}},
	{`user:alice`, []int{}},
	{`status > 200`, []int{1, 4}},
	{`status >= 200`, []int{1, 2, 3, 4}},
	{`status = 200`, []int{2, 3}},
	{`status:200`, []int{2, 3}},
	{`status < 500`, []int{2, 3}},
	{`status in [200 500]`, []int{1, 2, 3}},
	{`status in (200 500]`, []int{1}},
	{`status in [200 500)`, []int{2, 3}},
	{`latency < 1`, []int{2, 3}},
	{`latency in [0.5 *)`, []int{1, 3, 4}},
	{`latency <= 0.5`, []int{2, 3}},
	{`latency > 1e1`, []int{4}},
	{`__topic__:web`, []int{1, 2, 5}},
	{`__topic__:""`, []int{4, 6, 7}},
	{`__source__:10.0.*`, []int{1, 2, 4}},
	{`__source__:10.0.0.1`, []int{1}},
	{`__tag__:__path__:/var/log/app.log`, []int{1}},
	{`__tag__:__path__:*`, []int{1, 2}},
	{`__tag__:host:h1`, []int{3}},
	{`__time__ >= 1200`, []int{4, 5, 6, 7}},
	{`__time__ in [1000 1060)`, []int{1, 2}},
	{`j.a.b:deep`, []int{7}},
	{`j.n > 3`, []int{7}},
	{`j.n in [6 *]`, []int{}},
	{`host:web-01`, []int{2}}, // no field index: default text matching
	{`host:web*`, []int{2}},
	{`host:*`, []int{2}},
	{`nokey:x`, []int{}},
	{`"::"`, []int{1, 2, 3, 4, 5, 6, 7}},
	{`log\*`, []int{7}},   // escaped: a literal '*'
	{`log*`, []int{6, 7}}, // prefix: login, log*
	{`msg:log\*`, []int{7}},
	{`msg:lo\?`, []int{}}, // literal '?' is a delimiter: "lo" is no token
}

// TestSearchOnDuckDB runs every compiled search on a real DuckDB table
// in the default layout and checks which logs match.
func TestSearchOnDuckDB(t *testing.T) {
	idx := testIndex()
	db := openDefault(t, idx)
	s := DefaultSchema(idx)
	for _, c := range searchCases {
		t.Run(c.q, func(t *testing.T) {
			q, err := Parse(c.q)
			require.NoError(t, err)
			where, err := CompileSearch(q.Search, s)
			require.NoError(t, err)
			require.Equal(t, c.want, matchIDs(t, db, where), "%s %v", where.SQL, where.Args)
		})
	}
}

// TestSearchOnTypedColumns runs the same searches on the typed-column
// layout of server/store/duckdb (TypedColumnsSchema), where keys without
// a field index cannot be searched.
func TestSearchOnTypedColumns(t *testing.T) {
	idx := testIndex()
	db := openDefault(t, idx)
	_, err := db.Exec(`CREATE TABLE t2 AS SELECT id, __time__, __topic__, __source__, __line__,
		to_json(__tags__)::VARCHAR AS tags, __fields__['level'] AS level, __fields__['msg'] AS msg,
		TRY_CAST(__fields__['status'] AS BIGINT) AS status, TRY_CAST(__fields__['latency'] AS DOUBLE) AS latency,
		__fields__['user'] AS "user", __fields__['j'] AS j FROM t`)
	// j.a.b and j.n read the json column j.
	require.NoError(t, err)
	_, err = db.Exec(`ALTER TABLE t RENAME TO t_default`)
	require.NoError(t, err)
	_, err = db.Exec(`ALTER TABLE t2 RENAME TO t`)
	require.NoError(t, err)
	s := TypedColumnsSchema(idx, ColLine, "tags")
	for _, c := range searchCases {
		if strings.HasPrefix(c.q, "host:") || c.q == "nokey:x" || c.q == `empty:""` {
			continue // keys without their own column
		}
		t.Run(c.q, func(t *testing.T) {
			q, err := Parse(c.q)
			require.NoError(t, err)
			where, err := CompileSearch(q.Search, s)
			require.NoError(t, err)
			require.Equal(t, c.want, matchIDs(t, db, where), "%s %v", where.SQL, where.Args)
		})
	}
	q, err := Parse(`x and nokey:1`)
	require.NoError(t, err)
	_, err = CompileSearch(q.Search, s)
	require.EqualError(t, err, `syntax error at 6: key "nokey" has no field index: add it to the logstore's index to search it`)
}

func TestCompileErrors(t *testing.T) {
	s := DefaultSchema(testIndex())
	cases := []struct{ q, want string }{
		{`status:20*`, `syntax error at 0: wildcards are not allowed on long key "status"`},
		{`x latency:abc`, `syntax error at 2: key "latency" is indexed as double: "abc" is not a number`},
		{`level > 3`, `syntax error at 0: key "level" is indexed as text: comparisons and ranges need a long or double field index`},
		{`msg in [1 2]`, `syntax error at 0: key "msg" is indexed as text`},
	}
	for _, c := range cases {
		q, err := Parse(c.q)
		require.NoError(t, err)
		_, err = CompileSearch(q.Search, s)
		require.ErrorContains(t, err, c.want)
		require.True(t, errors.Is(err, store.ErrInvalidQuery))
	}
	// No line index: full text is refused with a hint.
	q, _ := Parse(`error`)
	_, err := CompileSearch(q.Search, Schema{Key: DefaultSchema(nil).Key})
	require.ErrorContains(t, err, "full-text search needs a full-text (line) index")
}

// TestCompileParameterises checks user values never reach the SQL text.
func TestCompileParameterises(t *testing.T) {
	s := DefaultSchema(testIndex())
	for _, in := range []string{`"x'); DROP TABLE t; --"`, `k':v`, `"' OR 1=1 --"`, `__tag__:a'b:c'd`, `a\"b`} {
		q, err := Parse(in)
		require.NoError(t, err)
		where, err := CompileSearch(q.Search, s)
		require.NoError(t, err)
		require.NotContains(t, where.SQL, "'b", in)
		require.NotContains(t, where.SQL, "DROP", in)
		require.NotContains(t, where.SQL, "OR 1", in)
	}
}

// sqlSource is the relation the SQL tests read: the store's typed view of
// the matching logs.
func sqlSource(where Expr) Expr {
	return Expr{
		SQL: `SELECT __time__, __topic__, __source__, __fields__['level'] AS level, __fields__['msg'] AS msg,
			TRY_CAST(__fields__['status'] AS BIGINT) AS status, TRY_CAST(__fields__['latency'] AS DOUBLE) AS latency
			FROM t WHERE ` + where.SQL,
		Args: where.Args,
	}
}

func runQuery(t *testing.T, db *sql.DB, text string, limit int) ([][]string, error) {
	t.Helper()
	q, err := Parse(text)
	if err != nil {
		return nil, err
	}
	where, err := CompileSearch(q.Search, DefaultSchema(testIndex()))
	if err != nil {
		return nil, err
	}
	stmt, err := q.SandboxSQL(SandboxOptions{Logstore: "access-log", Relation: "__sluice_logs__", Source: sqlSource(where), DefaultLimit: limit})
	if err != nil {
		return nil, err
	}
	rows, err := db.Query(stmt.SQL, stmt.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		row := make([]string, len(cols))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				row[i] = "null"
			case time.Time:
				row[i] = v.UTC().Format(time.DateTime)
			case []byte:
				row[i] = string(v)
			default:
				row[i] = toString(v)
			}
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSQLOnDuckDB runs sandboxed analysis queries on DuckDB.
func TestSQLOnDuckDB(t *testing.T) {
	db := openDefault(t, testIndex())
	cases := []struct {
		q     string
		limit int
		want  [][]string
	}{
		{`* | select status, count(*) as c group by status order by status`, 100,
			[][]string{{"200", "2"}, {"500", "1"}, {"502", "1"}, {"null", "3"}}},
		{`level:error | select count(*) as c`, 100, [][]string{{"2"}}},
		{`* | SELECT count(*) FROM log WHERE latency > 0.1`, 100, [][]string{{"3"}}},
		{`* | select count(*) from "access-log" where latency > 0.1`, 100, [][]string{{"3"}}},
		{`* | select log.level, count(*) c from log where log.level is not null group by log.level order by c desc, log.level limit 1`, 100,
			[][]string{{"info", "2"}}},
		{`* | select l.level from log l where l.status = 500`, 100, [][]string{{"ERROR"}}},
		{`* | with x as (select level from log where level is not null) select count(*) from x`, 100, [][]string{{"5"}}},
		{`* | with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) select sum(n) from r`, 100, [][]string{{"6"}}},
		{`* | with c as (select count(*) as n from log) select n * 2 from c`, 100, [][]string{{"14"}}},
		{`* | select 1 as x union all select 2 order by x`, 100, [][]string{{"1"}, {"1"}, {"1"}, {"1"}, {"1"}, {"1"}, {"1"}, {"2"}, {"2"}, {"2"}, {"2"}, {"2"}, {"2"}, {"2"}}},
		{`* | select count(*) from (select status from log where status >= 500)`, 100, [][]string{{"2"}}},
		{`* | select count(*) from log where status in (select status from log where latency > 1)`, 100, [][]string{{"2"}}},
		{`* | select date_format(from_unixtime(__time__), '%Y-%m-%d %H:%i:%s') as t order by t limit 1`, 100,
			[][]string{{"1970-01-01 00:16:40"}}},
		{`* | select date_trunc('minute', __time__) as m, count(*) as c group by m order by m`, 100,
			[][]string{{"1970-01-01 00:16:00", "2"}, {"1970-01-01 00:17:00", "1"}, {"1970-01-01 00:20:00", "1"}, {"1970-01-01 00:21:00", "1"}, {"1970-01-01 00:23:00", "1"}, {"1970-01-01 00:25:00", "1"}}},
		{`* | select date_format(__time__, '%H:%i') as m order by m limit 1`, 100, [][]string{{"00:16"}}},
		{`* | select approx_percentile(latency, 0.5) is not null as ok`, 100, [][]string{{"true"}}},
		{`* | select __time__ order by __time__ limit 2, 2`, 100, [][]string{{"1060"}, {"1200"}}},
		{`* | select __time__ order by __time__`, 3, [][]string{{"1000"}, {"1010"}, {"1060"}}},
		{`* | from log select count(*)`, 100, [][]string{{"7"}}},
		{`* | select count(*) filter (where level = 'info') as i, count(*) as n`, 100, [][]string{{"2", "7"}}},
		{`* | select 'it''s' as s, /* comment */ count(*) -- tail`, 100, [][]string{{"it's", "7"}}},
		{`__topic__:web | select count(*) as c;`, 100, [][]string{{"3"}}},
		{`* | select extract(year from to_timestamp(__time__)) as y limit 1`, 100, [][]string{{"1970"}}},
		{`* | select sum(x) from (select unnest([1, 2, 3]) as x)`, 100, [][]string{{"6"}}},
		{`* | select count(*) from log a join log b on a.__time__ = b.__time__`, 100, [][]string{{"7"}}},
		{`* | select count(*) from (log a join log b on a.__time__ = b.__time__)`, 100, [][]string{{"7"}}},
		{`* | select status is distinct from 200 as d order by __time__ limit 1`, 100, [][]string{{"true"}}},
		// Guarded value builders (run-time size checks) give the plain results.
		{`* | select replace(msg, 'GET', 'get') as a, replace(replace(level, 'R', 'rr'), 'O', '') as b, repeat(level, 2) as c where status = 500`, 100,
			[][]string{{"get /api/v1/orders failed", "Errrrrr", "ERRORERROR"}}},
		{`* | select regexp_replace(msg, '[0-9]', '#', 'g') as a, regexp_replace(msg, '(/api)', '\1\1') as b where status = 500`, 100,
			[][]string{{"GET /api/v#/orders failed", "GET /api/api/v1/orders failed"}}},
		{`* | select count(*) from log where replace(level, 'o', 'oo') = 'infoo'`, 100, [][]string{{"2"}}},
		{`* | select * exclude (msg, __time__, __topic__, __source__) replace (lower(level) as level) where status = 500`, 100,
			[][]string{{"error", "500", "1.25"}}},
	}
	for _, c := range cases {
		t.Run(c.q, func(t *testing.T) {
			rows, err := runQuery(t, db, c.q, c.limit)
			require.NoError(t, err)
			require.Equal(t, c.want, rows)
		})
	}
}

// TestValueGuardsOnDuckDB: values built from columns or CTEs are checked
// as DuckDB computes them; the error carries query.ValueLimitMarker.
func TestValueGuardsOnDuckDB(t *testing.T) {
	db := openDefault(t, testIndex())
	for _, q := range []string{
		`* | with a as (select repeat('x', 16000) s) select length(repeat(s, 1024)) from a`,
		`* | with a as (select repeat('xy', 8000) s) select length(replace(s, 'x', 'xxxxx')) from a`,
		`* | select length(replace(msg, ' ', repeat(' ', 16384))) from log`,
		`* | with a as (select repeat('x', 8000) s) select length(regexp_replace(s, 'x', 'yyy', 'g')) from a`,
		`* | with a as (select repeat('x', 8000) s) select length(regexp_replace(s, '(x+)', '\1\1\1')) from a`,
		`* | with a as (select repeat('x', 1000) s) select length(regexp_replace(s, '', 'yyyyyyyyyyyyyyyyyyyy', 'g')) from a`,
	} {
		t.Run(q, func(t *testing.T) {
			_, err := runQuery(t, db, q, 100)
			require.ErrorContains(t, err, ValueLimitMarker)
		})
	}
	// Shrinking or small replacements pass, whatever the value's size.
	rows, err := runQuery(t, db, `* | with a as (select repeat('xy', 8000) s) select length(replace(s, 'x', '')), length(regexp_replace(s, 'y', '', 'g')) from a`, 100)
	require.NoError(t, err)
	require.Equal(t, [][]string{{"8000", "8000"}}, rows)
}

// TestSandboxRefusesOnDuckDB: escapes that DuckDB itself would run are
// refused before reaching it, and the data of other tables stays hidden.
func TestSandboxRefusesOnDuckDB(t *testing.T) {
	db := openDefault(t, testIndex())
	_, err := db.Exec("CREATE TABLE secret AS SELECT 'hunter2' AS pw")
	require.NoError(t, err)
	// Sanity: the raw attack works on this connection.
	var pw string
	require.NoError(t, db.QueryRow("SELECT pw FROM secret").Scan(&pw))
	for _, q := range []string{
		`* | select pw from secret`,
		`* | select * from log, secret`,
		`* | select * from log join secret on true`,
		`* | select (select pw from secret)`,
		`* | with secret as (select * from secret) select * from secret`,
		`* | with a as (select * from b), b as (select 1) select * from a`,
		`* | select * from (select 1) x, (secret)`,
		`* | select * from (secret cross join log)`,
		`* | select * from main.secret`,
		`* | select * from memory.main.secret`,
		`* | select * from "secret"`,
		`* | select * from query_table('secret')`,
		`* | select * from query('select * from secret')`,
		`* | select * from (select 1) where exists (from secret)`,
		`* | select array(select pw from secret)`,
		`* | select * from duckdb_tables()`,
		`* | select * from information_schema.tables`,
		`* | select (with s as (select 1) select 1) from log, s`,
	} {
		t.Run(q, func(t *testing.T) {
			rows, err := runQuery(t, db, q, 100)
			require.Error(t, err, "%v", rows)
			require.True(t, errors.Is(err, store.ErrInvalidQuery), "%v", err)
		})
	}
}

func TestHistogramOnDuckDB(t *testing.T) {
	db := openDefault(t, testIndex())
	from := time.Unix(1000, 0)
	b := HistogramBucket(Expr{SQL: QuoteIdent(ColTime)}, from, 100*time.Second)
	rows, err := db.Query("SELECT "+b.SQL+" AS b, count(*) FROM t GROUP BY b ORDER BY b", b.Args...)
	require.NoError(t, err)
	defer rows.Close()
	var got [][2]int64
	for rows.Next() {
		var x [2]int64
		require.NoError(t, rows.Scan(&x[0], &x[1]))
		got = append(got, x)
	}
	require.Equal(t, [][2]int64{{1000, 3}, {1200, 1}, {1300, 1}, {1400, 1}, {1500, 1}}, got)

	require.Equal(t, time.Minute, HistogramInterval(time.Unix(0, 0), time.Unix(3600, 0)))
	require.Equal(t, 5*time.Second, HistogramInterval(time.Unix(0, 0), time.Unix(120, 0)))
	require.Equal(t, 2*24*time.Hour, HistogramInterval(time.Unix(0, 0), time.Unix(100*86400, 0)))
}

func TestTokenizer(t *testing.T) {
	tok := NewTokenizer(nil, false)
	require.Equal(t, []string{"get", "api", "v1", "x", "中文"}, tok.Tokens("GET /api/v1?x=中文"))
	require.Equal(t, " get api v1 x 中文 ", string(tok.AppendValue(nil, "GET /api/v1?x=中文")))
	require.Equal(t, "", string(tok.AppendValue(nil, ",,, ")))
	require.Equal(t, " a  b ", string(tok.AppendValue(tok.AppendValue(nil, "a"), "B")))
	cs := NewTokenizer([]string{"|"}, true)
	require.Equal(t, []string{"A", "b,C"}, cs.Tokens("A|b,C"))
	require.Equal(t, []string{"x", "y"}, cs.Tokens("x y"), "space always separates")
	toks := slices.Clone(tok.Tokens("Ä Ö"))
	sort.Strings(toks)
	require.Equal(t, []string{"ä", "ö"}, toks)
}

// TestSandboxOutputParses: every rewritten statement (tokens re-joined
// with spaces, FROM inserted, aliases renamed) is valid DuckDB syntax.
func TestSandboxOutputParses(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	require.NoError(t, err)
	defer db.Close()
	for _, in := range []string{
		`select status, count(*) as c group by status`,
		`select * from LOG l`,
		`select a limit 10, 20`,
		`select a union all select b`,
		`from log select a`,
		`select 'x''y' /* c */ -- d`,
		`select "we""ird" from log`,
		`select approx_percentile(x, 0.9), approx_distinct(u), from_unixtime(__time__)`,
		`select a::varchar, b->>'$.x', c || d, e >= 1, f <> 2, -g, h // 2, i ** 2, j !~~ 'x%'`,
		`select a*-1, cast(a as decimal(10,2)), list_transform(l, x -> x + 1), {'k': 1}, [1, 2][1:2]`,
		`with x as materialized (select a from log) select * from x`,
		`select * from (select a from log) t(b)`,
		`select * from unnest([1,2]) u(x)`,
		`select count(*) filter (where a > 1) over (partition by b order by c rows between 1 preceding and current row)`,
		`select a is not distinct from b, extract(year from t), substring(s from 1 for 2), trim(both 'x' from s)`,
		`select case when a then 1 else 2 end, a between 1 and 2, a not like 'x' escape '\', a similar to 'x'`,
		`select * exclude (a), columns('x.*') from log qualify row_number() over () < 3`,
		`select distinct on (a) a, b from log order by a, b desc nulls last`,
	} {
		e, err := SandboxSQL(in, SandboxOptions{Relation: "logs"})
		require.NoError(t, err, in)
		var out string
		require.NoError(t, db.QueryRow("SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", e.SQL).Scan(&out))
		require.Contains(t, out, `"error":false`, "%s\n→ %s\n%s", in, e.SQL, out)
	}
	// The check itself detects bad syntax.
	var out string
	require.NoError(t, db.QueryRow("SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", "select a :: from").Scan(&out))
	require.Contains(t, out, `"error":true`)
}

// TestCompilePrefixedOnDuckDB drives Compile the way server/store/duckdb
// does: typed columns, the caller prepends WITH logs AS (...).
func TestCompilePrefixedOnDuckDB(t *testing.T) {
	idx := testIndex()
	db := openDefault(t, idx)
	_, err := db.Exec(`CREATE TABLE typed AS SELECT id, __time__, __topic__, __source__, __line__,
		to_json(__tags__)::VARCHAR AS __tags__, __fields__['level'] AS level, __fields__['msg'] AS msg,
		TRY_CAST(__fields__['status'] AS BIGINT) AS status, TRY_CAST(__fields__['latency'] AS DOUBLE) AS latency,
		__fields__['user'] AS "user" FROM t`)
	require.NoError(t, err)
	opt := SandboxOptions{Logstore: "access", Relation: "logs", Prefixed: true, DefaultLimit: 100}
	run := func(text string) [][]string {
		c, err := Compile(text, TypedColumnsSchema(idx, ColLine, ColTags), opt)
		require.NoError(t, err, text)
		require.True(t, c.Query.HasSQL)
		stmt := "WITH logs AS (SELECT * FROM typed WHERE __time__ >= ? AND " + c.Where.SQL + ") " + c.SQL.SQL
		args := append(append([]any{int64(0)}, c.Where.Args...), c.SQL.Args...)
		rows, err := db.Query(stmt, args...)
		require.NoError(t, err, stmt)
		defer rows.Close()
		var out [][]string
		for rows.Next() {
			var a, b any
			require.NoError(t, rows.Scan(&a, &b))
			out = append(out, []string{toString(a), toString(b)})
		}
		return out
	}
	require.Equal(t, [][]string{{"ERROR", "1"}, {"error", "1"}},
		run(`level:error | select level, count(*) as c group by level order by level`))
	require.Equal(t, [][]string{{"/var/log/app.log", "1"}},
		run(`__tag__:__path__:/var/log/app.log | select json_extract_string(__tags__, '$.__path__') as p, count(*) group by p`))
	require.Equal(t, [][]string{{"2", "1.25"}},
		run(`status >= 500 | with e as (select latency from log) select count(*), min(latency) from e`))

	_, err = Compile(`nokey:1 | select 1`, TypedColumnsSchema(idx, ColLine, ColTags), opt)
	require.ErrorContains(t, err, `key "nokey" has no field index`)
	_, err = Compile(`* | select * from secret`, TypedColumnsSchema(idx, ColLine, ColTags), opt)
	var qe *Error
	require.True(t, errors.As(err, &qe))
	require.Equal(t, 18, qe.Pos)
}
