package query

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/store"
)

func TestSandboxSizeCaps(t *testing.T) {
	opt := SandboxOptions{Relation: "log"}
	refused := []struct{ sql, msg string }{
		{`select range(1, 100000000)`, "would build 99999999 elements"},
		{`select range(100000000)`, "would build"},
		{`select generate_series(1, 1e9, 1)`, "would build"},
		{`select range(1, 10000*10000)`, "number literals only"},
		{`select range(1, status)`, "number literals only"},
		{`select range(1, 10, 0)`, "step must not be 0"},
		{`select unnest(range(1, 2000000))`, "would build"},
		{`select repeat('x', 100000000)`, "would build 100000000 bytes"},
		{`select repeat('ab', 600000)`, "would build 1200000 bytes"},
		{`select repeat('x', 10*10)`, "count must be a number literal"},
		{`select repeat(request_uri, 5000)`, "at most 1024 times"},
		{`select regexp_replace(a, 'x', b)`, "replacement must be a string literal"},
		{`select regexp_replace(a, 'x', 'y', b)`, "options must be a string literal"},
		{`select repeat(repeat('x', 1000), 1000)`, "repeat() inside repeat()"},
		{`select lpad('x', 100000000, 'y')`, "lpad() length"},
		{`select rpad(method, status, 'y')`, "rpad() length"},
		{`select bar(1, 0, 10, 1e9)`, "bar() width"},
		{`select printf('%1000000000d', 1)`, "format width"},
		{`select format('{:>99999999}', 1)`, "format width"},
		{`select printf(method, 1)`, "format must be a string literal"},
		{`select lpad(method, 20000, ' ')`, "lpad() length must be a number literal of at most 16384"},
	}
	for _, c := range refused {
		t.Run(c.sql, func(t *testing.T) {
			_, err := SandboxSQL(c.sql, opt)
			require.ErrorContains(t, err, c.msg)
		})
	}
	allowed := []string{
		`select range(1, 1000)`,
		`select range(-5, 5, 2)`,
		`select generate_series(1000000)`,
		`select * from range(100000000)`, // streams in chunks: interruptible
		`select * from generate_series(1, 1e12) t(x) limit 3`,
		`select repeat('-', 80), lpad(method, 10, ' '), rpad(cast(status as varchar), 5, '0')`,
		`select repeat(method, 3)`,
		`select bar(status, 0, 600), bar(status, 0, 600, 40)`,
		`select printf('%5.2f %s', 1.5, method), format('{} {}', 1, 2), printf('id 12345678901 %d', 1)`,
		`select list_transform(range(1, 10), x -> x * 2)`,
	}
	for _, sql := range allowed {
		t.Run(sql, func(t *testing.T) {
			_, err := SandboxSQL(sql, opt)
			require.NoError(t, err)
		})
	}
}

func TestMaxFormatNumber(t *testing.T) {
	require.Equal(t, 10, maxFormatNumber("%10.2f and 12345"))
	require.Equal(t, 8, maxFormatNumber("{:>8} {}"))
	require.Equal(t, 0, maxFormatNumber("plain 123456789012"))
	require.Greater(t, maxFormatNumber("%99999999999d"), MaxBuiltString)
}

func TestSandboxCountLimits(t *testing.T) {
	lim := Limits{MaxCTEs: 2, MaxSubqueries: 2, MaxJoins: 2, MaxDepth: 6}
	opt := SandboxOptions{Relation: "log", Limits: lim}
	ok := []string{
		`with a as (select 1), b as (select 2) select * from a, b`,
		`select (select 1), (select 2)`,
		`select 1 union all select 2 union all select 3`,
		`select * from log a join log b on a.x = b.x join log c on a.x = c.x`,
		`select * from log a, log b, log c`,
		`select ((((1))))`,
		`select lower(upper(trim(array_to_string([1, [2]], ','))))`,
	}
	for _, q := range ok {
		_, err := SandboxSQL(q, opt)
		require.NoError(t, err, q)
	}
	refused := []struct{ sql, limit string }{
		{`with a as (select 1), b as (select 2), c as (select 3) select 1`, "max-ctes"},
		{`with recursive a as (select 1), b as (select 2), c as (select 3) select 1`, "max-ctes"},
		{`select (select 1), (select 2), (select 3)`, "max-subqueries"},
		{`select * from (select 1) a, (select 2) b, (select 3) c`, "max-subqueries"},
		{`select 1 from log where x in (select 1) and exists (select 2) and y in (select 3)`, "max-subqueries"},
		{`select 1 union select 2 intersect select 3 except select 4`, "max-subqueries"},
		{`select * from log a join log b on true join log c on true join log d on true`, "max-joins"},
		{`select * from log a, log b, log c, log d`, "max-joins"},
		{`select (((((((1)))))))`, "max-depth"},
		{`select [[[[[[[1]]]]]]]`, "max-depth"},
	}
	for _, c := range refused {
		t.Run(c.sql, func(t *testing.T) {
			_, err := SandboxSQL(c.sql, opt)
			require.ErrorIs(t, err, store.ErrQueryLimit)
			require.ErrorIs(t, err, store.ErrInvalidQuery)
			var qe *Error
			require.ErrorAs(t, err, &qe)
			require.Equal(t, c.limit, qe.Limit)
			require.Contains(t, err.Error(), "query limit "+c.limit)
		})
	}
	// Defaults apply to zero fields; the text length is the caller's check.
	require.Equal(t, DefaultLimits(), Limits{}.WithDefaults())
	require.NoError(t, Limits{}.CheckLength(strings.Repeat("x", 32<<10)))
	err := Limits{MaxBytes: 10}.CheckLength("* | select 1")
	require.ErrorIs(t, err, store.ErrQueryLimit)
	require.ErrorContains(t, err, "query limit max-query-bytes")
	// The limit survives the offset shift of Query.SandboxSQL.
	q, err := Parse("* | with a as (select 1), b as (select 2), c as (select 3) select 1")
	require.NoError(t, err)
	_, err = q.SandboxSQL(opt)
	require.ErrorIs(t, err, store.ErrQueryLimit)
}

// Nested guarded calls grow the SQL linearly, not exponentially.
func TestGuardedCallsNestLinearly(t *testing.T) {
	sql := "select x"
	sizes := []int{}
	for range 12 {
		sql = "select replace((" + sql + "), 'a', 'bb')"
		e, err := SandboxSQL(sql, SandboxOptions{Relation: "log", Limits: Limits{MaxSubqueries: 100, MaxDepth: 100}})
		require.NoError(t, err)
		sizes = append(sizes, len(e.SQL))
	}
	growth := sizes[11] - sizes[10]
	require.Less(t, growth, 2*(sizes[1]-sizes[0]), "sizes %v", sizes)
}
