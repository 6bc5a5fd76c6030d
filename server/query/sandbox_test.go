package query

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/store"
)

func TestSandboxRewrites(t *testing.T) {
	opt := SandboxOptions{Logstore: "nginx-access", Relation: "logs"}
	cases := []struct{ in, want string }{
		{`select status, count(*) as c group by status`,
			`select status , count ( * ) as c FROM "logs" group by status`},
		{`SELECT count(*)`, `SELECT count ( * ) FROM "logs"`},
		{`select * from log`, `select * from "logs" AS "log"`},
		{`select * from LOG l`, `select * from "logs" l`},
		{`select * from "nginx-access" as x`, `select * from "logs" as x`},
		{`select * from nginx_access`, ``}, // not the logstore name
		{`select a from log where b > 1 order by a limit 5`, `select a from "logs" AS "log" where b > 1 order by a limit 5`},
		{`select a where b > 1`, `select a FROM "logs" where b > 1`},
		{`select a limit 10, 20`, `select a FROM "logs" limit 20 OFFSET 10`},
		{`select a union all select b`, `select a FROM "logs" union all select b FROM "logs"`},
		{`from log select a`, `from "logs" AS "log" select a`},
		{`select 'x''y' /* c */ -- d`, `select 'x''y' FROM "logs"`},
		{`select "we""ird" from log`, `select "we""ird" from "logs" AS "log"`},
		{`select approx_percentile(x, 0.9), approx_distinct(u), from_unixtime(__time__)`,
			`select approx_quantile ( x , 0.9 ) , approx_count_distinct ( u ) , to_timestamp ( __time__ ) FROM "logs"`},
		{`select date_format(t, '%Y-%m-%d %H:%i:%s')`, `select strftime ( t , '%Y-%m-%d %H:%M:%S' ) FROM "logs"`},
		{`select date_trunc('minute', __time__) as m, date_format(__time__, '%H:%i'), date_trunc('hour', __time__ + 1)`,
			`select date_trunc ( 'minute' , to_timestamp ( __time__ ) ) as m , strftime ( to_timestamp ( __time__ ) , '%H:%M' ) , date_trunc ( 'hour' , __time__ + 1 ) FROM "logs"`},
		{`select a::varchar, b->>'$.x', c || d, e >= 1, f <> 2, -g`,
			`select a :: varchar , b ->> '$.x' , c || d , e >= 1 , f <> 2 , - g FROM "logs"`},
		{`select a*-1`, `select a * - 1 FROM "logs"`},
		{`select cast(a as decimal(10,2))`, `select cast ( a as decimal ( 10 , 2 ) ) FROM "logs"`},
		{`select list_transform(l, x -> x + 1)`, `select list_transform ( l , x -> x + 1 ) FROM "logs"`},
		{`select count(*);`, `select count ( * ) FROM "logs"`},
		{`with x as (select a from log) select * from x`, `with x as ( select a from "logs" AS "log" ) select * from x`},
		{`select * from (select a from log) t(b)`, `select * from ( select a from "logs" AS "log" ) t ( b )`},
		{`select * from unnest([1,2]) u(x)`, `select * from unnest ( [ 1 , 2 ] ) u ( x )`},
		{`values (1)`, `values ( 1 )`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			e, err := SandboxSQL(c.in, opt)
			if c.want == "" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, e.SQL)
		})
	}
}

func TestSandboxSourceAndLimit(t *testing.T) {
	src := Expr{SQL: `SELECT * FROM t WHERE x = ?`, Args: []any{"v"}}
	e, err := SandboxSQL(`select a`, SandboxOptions{Source: src, DefaultLimit: 100})
	require.NoError(t, err)
	require.Equal(t, `WITH "log" AS (SELECT * FROM t WHERE x = ?) select a FROM "log" LIMIT 100`, e.SQL)
	require.Equal(t, []any{"v"}, e.Args)

	e, err = SandboxSQL(`with y as (select 1 from log) select * from y`, SandboxOptions{Source: src, DefaultLimit: 100})
	require.NoError(t, err)
	require.Equal(t, `WITH "log" AS (SELECT * FROM t WHERE x = ?), y as ( select 1 from "log" ) select * from y LIMIT 100`, e.SQL)

	e, err = SandboxSQL(`WITH RECURSIVE r(n) AS (select 1) select * from r`, SandboxOptions{Source: src})
	require.NoError(t, err)
	require.Equal(t, `WITH RECURSIVE "log" AS (SELECT * FROM t WHERE x = ?), r ( n ) AS ( select 1 ) select * from r`, e.SQL)

	// Prefixed: the caller writes WITH logs AS (...) itself.
	e, err = SandboxSQL(`with y as (select 1 from log) select * from y`, SandboxOptions{Relation: "logs", Prefixed: true})
	require.NoError(t, err)
	require.Equal(t, `, y as ( select 1 from "logs" AS "log" ) select * from y`, e.SQL)
	_, err = SandboxSQL(`with recursive y as (select 1) select * from y`, SandboxOptions{Prefixed: true})
	require.ErrorContains(t, err, "WITH RECURSIVE is not supported")

	e, err = SandboxSQL(`select a from log limit 3`, SandboxOptions{DefaultLimit: 100})
	require.NoError(t, err)
	require.Equal(t, `select a from "log" limit 3`, e.SQL)
	e, err = SandboxSQL(`select a from log where b in (select c from log limit 1)`, SandboxOptions{DefaultLimit: 100})
	require.NoError(t, err)
	require.Equal(t, `select a from "log" where b in ( select c from "log" limit 1 ) LIMIT 100`, e.SQL)
}

// TestSandboxRefuses tries every escape from the brief and more.
func TestSandboxRefuses(t *testing.T) {
	cases := []struct{ in, want string }{
		// files
		{`select * from read_csv('/etc/passwd')`, `table function "read_csv" is not allowed`},
		{`select * from read_csv_auto('/etc/passwd')`, `table function "read_csv_auto" is not allowed`},
		{`select * from READ_PARQUET('x.parquet')`, `table function "READ_PARQUET" is not allowed`},
		{`select * from read_json('x')`, `not allowed`},
		{`select * from read_json_auto('x')`, `not allowed`},
		{`select * from read_json_objects('x')`, `not allowed`},
		{`select * from read_ndjson('x')`, `not allowed`},
		{`select * from read_text('/etc/passwd')`, `not allowed`},
		{`select * from read_blob('/etc/passwd')`, `not allowed`},
		{`select * from glob('/*')`, `table function "glob" is not allowed`},
		{`select * from parquet_metadata('x')`, `not allowed`},
		{`select * from parquet_scan('x')`, `not allowed`},
		{`select * from parquet_schema('x')`, `not allowed`},
		{`select * from sniff_csv('x')`, `not allowed`},
		{`select * from 'file.csv'`, `reading files is not allowed`},
		{`select * from "file.csv"`, `table "file.csv" is not allowed`},
		{`from '/etc/passwd'`, `reading files is not allowed`},
		{`select * from log, 'x.parquet'`, `reading files is not allowed`},
		{`select * from log join 'x.csv' on true`, `reading files is not allowed`},
		{`select (select content from read_text('/etc/passwd'))`, `table function "read_text" is not allowed`},
		{`select read_text('/etc/passwd')`, `function "read_text" is not allowed`},
		{`select "read_csv"('x')`, `function "read_csv" is not allowed`},
		{`select x.read_csv()`, `function "read_csv" is not allowed`},
		{`select main.read_csv('x')`, `function "read_csv" is not allowed`},
		{`select * from log where x in (from read_csv('x'))`, `not allowed`},
		// statements
		{`COPY log TO '/tmp/x.csv'`, `only SELECT queries are allowed, found "COPY"`},
		{`copy (select 1) to 'x'`, `only SELECT`},
		{`ATTACH '/tmp/x.db' AS x`, `only SELECT`},
		{`DETACH x`, `only SELECT`},
		{`INSTALL httpfs`, `only SELECT`},
		{`LOAD httpfs`, `only SELECT`},
		{`PRAGMA database_list`, `only SELECT`},
		{`SET enable_external_access = true`, `only SELECT`},
		{`RESET enable_external_access`, `only SELECT`},
		{`CALL pragma_version()`, `only SELECT`},
		{`EXPORT DATABASE '/tmp/x'`, `only SELECT`},
		{`IMPORT DATABASE '/tmp/x'`, `only SELECT`},
		{`CREATE TABLE x AS SELECT 1`, `only SELECT`},
		{`CREATE MACRO m() AS 1`, `only SELECT`},
		{`CREATE SECRET s (TYPE s3)`, `only SELECT`},
		{`INSERT INTO log VALUES (1)`, `only SELECT`},
		{`UPDATE log SET a = 1`, `only SELECT`},
		{`DELETE FROM log`, `only SELECT`},
		{`DROP TABLE log`, `only SELECT`},
		{`ALTER TABLE log ADD COLUMN x INT`, `only SELECT`},
		{`DESCRIBE log`, `only SELECT`},
		{`SUMMARIZE log`, `only SELECT`},
		{`SHOW TABLES`, `only SELECT`},
		{`EXPLAIN SELECT 1`, `only SELECT`},
		{`PIVOT log ON a`, `only SELECT`},
		{`TABLE log`, `only SELECT`},
		{`USE other`, `only SELECT`},
		{`CHECKPOINT`, `only SELECT`},
		{`BEGIN`, `only SELECT`},
		// statements smuggled after a SELECT
		{`select 1; drop table log`, `only one SQL statement is allowed`},
		{`select 1; select 2`, `only one SQL statement is allowed`},
		{`select 1;;`, `only one SQL statement`},
		{`select 1 /* ; */ ; copy log to 'x'`, `syntax error at 17: only one SQL statement`},
		{"select 1 -- comment\n; attach 'x'", `only one SQL statement`},
		{`select 1 /* /* nested */ ; */ ; load x`, `syntax error at 30: only one SQL statement`},
		{`select 1 /* /* nested */ ; */ , load`, `"LOAD" is not allowed`},
		{`select 1 as drop`, `"DROP" is not allowed`},
		{`/* select */ copy log to 'x'`, `only SELECT`},
		{`-- select` + "\n" + `pragma x`, `only SELECT`},
		{`with x as (select 1) insert into log select * from x`, `"INSERT" is not allowed`},
		{`select * from log where exists (table other)`, `"TABLE" is not allowed`},
		{`select * from (pivot log on a)`, `"PIVOT" is not allowed`},
		{`select * from log unpivot (v for k in (a, b))`, `"UNPIVOT" is not allowed`},
		// settings, environment, catalog
		{`select getenv('HOME')`, `function "getenv" is not allowed`},
		{`select current_setting('threads')`, `function "current_setting" is not allowed`},
		{`select getvariable('x')`, `not allowed`},
		{`select * from duckdb_settings()`, `table function "duckdb_settings" is not allowed`},
		{`select * from duckdb_tables()`, `not allowed`},
		{`select * from duckdb_databases()`, `not allowed`},
		{`select * from duckdb_secrets()`, `not allowed`},
		{`select * from duckdb_extensions()`, `not allowed`},
		{`select * from pragma_table_info('log')`, `not allowed`},
		{`select * from information_schema.tables`, `qualified table names are not allowed`},
		{`select * from pg_catalog.pg_tables`, `qualified table names are not allowed`},
		{`select * from sqlite_master`, `table "sqlite_master" is not allowed`},
		{`select * from sqlite_scan('x.db', 't')`, `not allowed`},
		{`select * from postgres_scan('dsn', 'public', 't')`, `not allowed`},
		{`select * from mysql_scan('x')`, `not allowed`},
		{`select * from query('select 1')`, `table function "query" is not allowed`},
		{`select * from query_table('t')`, `not allowed`},
		{`select * from iceberg_scan('x')`, `not allowed`},
		{`select * from delta_scan('x')`, `not allowed`},
		{`select load_extension('x')`, `not allowed`},
		{`select * from which_secret('s3://x', 's3')`, `not allowed`},
		// other tables
		{`select * from other`, `table "other" is not allowed`},
		{`select * from log, other`, `table "other" is not allowed`},
		{`select * from log a, log b, other`, `table "other" is not allowed`},
		{`select * from log natural join other`, `table "other" is not allowed`},
		{`select * from log left outer join other using (a)`, `table "other" is not allowed`},
		{`select * from log positional join other`, `table "other" is not allowed`},
		{`select * from log asof join other on true`, `table "other" is not allowed`},
		{`select * from log, lateral other`, `table "other" is not allowed`},
		{`select * from (other cross join log)`, `table "other" is not allowed`},
		{`select * from ((other))`, `table "other" is not allowed`},
		{`select (select max(x) from other)`, `table "other" is not allowed`},
		{`select * from log where a in (select a from other)`, `table "other" is not allowed`},
		{`select array(select a from other)`, `table "other" is not allowed`},
		{`select exists(from other)`, `table "other" is not allowed`},
		{`select * from log where a is distinct from b and c in (from other)`, `table "other" is not allowed`},
		{`select extract(year from (select t from other))`, `table "other" is not allowed`},
		{`select * from main.log`, `qualified table names are not allowed`},
		{`select * from db.main.t`, `qualified table names are not allowed`},
		{`with x as (select * from x) select * from x`, `table "x" is not allowed`},
		{`with a as (select * from b), b as (select 1) select * from a`, `table "b" is not allowed`},
		{`select * from (with s as (select 1) select * from s) q, s`, `table "s" is not allowed`},
		{`with w as (select 1) select * from log window w as (partition by a)`, ``},
		// lexical tricks
		{`select $$x$$`, `parameters and $-quoting are not allowed`},
		{`select $1`, `parameters`},
		{`select ?`, `parameters`},
		{`select E'\x27'`, `prefixed string literals`},
		{`select U&'\0061'`, ``}, // emitted as U & '\0061': no unicode escape,
		{`select 'unterminated`, `unterminated string literal`},
		{`select "unterminated`, `unterminated quoted identifier`},
		{`select 1 /* unterminated`, `unterminated /* comment`},
		{`select ""`, `empty quoted identifier`},
		{`select rеad_csv('x')`, `unquoted identifiers must be ASCII`}, // Cyrillic е
		{`select ｒead_csv('x')`, `unexpected character`},
		{`select ` + "`x`", `unexpected character`},
		{`select a \ b`, `unexpected character`},
		{`select a := 1`, `":=" is not supported`},
		{`select * from log)`, `unexpected ")"`},
		{`select (1`, `missing ")"`},
		{`select * from`, `expected a table after FROM/JOIN`},
		{`select * from log join`, `expected a table after FROM/JOIN`},
		{``, `empty SQL`},
		{`;`, `empty SQL`},
		{`   -- only a comment`, `empty SQL`},
		{`with`, `incomplete WITH clause`},
		{`with x (select 1) select 1`, `expected AS after CTE name`},
		{"select 'a\x00' from log", `NUL character in SQL`},
		{"select 'a\xff'", `invalid UTF-8 in SQL`},
		{`select a @@ b`, `operator "@@" is not supported`},
		{`select * from log into other`, `"INTO" is not allowed`},
		{`select * from log read_csv('x')`, `expected a column alias`},
		{`select * from log t(a, read_csv('x'))`, `expected a column alias`},
		{`select * from log t(a`, `missing ")"`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			e, err := SandboxSQL(c.in, SandboxOptions{Logstore: "access"})
			if c.want == "" {
				require.NoError(t, err) // a harmless look-alike
				return
			}
			require.Error(t, err, "accepted as %s", e.SQL)
			require.ErrorContains(t, err, c.want)
			require.True(t, errors.Is(err, store.ErrInvalidQuery))
		})
	}
}

// TestSandboxErrorPositions: the console shows errors at the offending
// byte.
func TestSandboxErrorPositions(t *testing.T) {
	for _, c := range []struct {
		in  string
		pos int
	}{
		{`select * from other`, 14},
		{`select read_text('x')`, 7},
		{`select 1; copy`, 8},
		{`select 'abc`, 7},
	} {
		_, err := SandboxSQL(c.in, SandboxOptions{})
		var qe *Error
		require.True(t, errors.As(err, &qe), c.in)
		require.Equal(t, c.pos, qe.Pos, c.in)
	}
}

func TestAllowlistHasNoDangerousFunctions(t *testing.T) {
	for name := range allowedFunctions {
		for _, bad := range []string{"read_", "glob", "parquet", "duckdb_", "pragma", "getenv", "setting",
			"scan", "query", "secret", "extension", "attach", "variable", "sql"} {
			require.NotContains(t, name, bad)
		}
	}
	for name, to := range slsAliases {
		require.True(t, allowedFunctions[to], "%s → %s", name, to)
	}
}

// TestQueryPos checks that every emitted token of a sandboxed statement
// maps back to where the user wrote it, also after rewrites and with the
// store's own SQL in front.
func TestQueryPos(t *testing.T) {
	q, err := Parse("status:200 | select from_unixtime(__time__) as t,\n  count(*) as \"日志\" group by t")
	require.NoError(t, err)
	stmt, err := q.SandboxSQL(SandboxOptions{Logstore: "l", Source: Expr{SQL: "SELECT * FROM x WHERE a = ?", Args: []any{1}}, DefaultLimit: 100})
	require.NoError(t, err)
	for _, word := range []string{"select", "as t", "count", `"日志"`, "group", "by t"} {
		at := strings.Index(stmt.SQL, word)
		require.GreaterOrEqual(t, at, 0, stmt.SQL)
		pos, ok := stmt.QueryPos(at)
		require.True(t, ok, word)
		require.Equal(t, strings.Index(q.Text, word), pos, "%s in %s", word, stmt.SQL)
	}
	// The rewritten function maps to the user's name for it.
	pos, ok := stmt.QueryPos(strings.Index(stmt.SQL, "to_timestamp"))
	require.True(t, ok)
	require.Equal(t, strings.Index(q.Text, "from_unixtime"), pos)
	// The store's own part and the added LIMIT are not the user's.
	_, ok = stmt.QueryPos(strings.Index(stmt.SQL, "WHERE a"))
	require.False(t, ok)
	_, ok = stmt.QueryPos(strings.Index(stmt.SQL, "LIMIT"))
	require.False(t, ok)
}
