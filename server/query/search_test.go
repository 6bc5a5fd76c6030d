package query

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/store"
)

// TestParseSearch covers every construct of docs/log-service-api.md §5; want is the
// canonical rendering of the parsed tree (which shows the grouping).
func TestParseSearch(t *testing.T) {
	cases := []struct{ in, want string }{
		{``, `*`},
		{`   `, `*`},
		{`*`, `*`},
		{`error`, `error`},
		{`a b`, `a and b`},
		{`a and b`, `a and b`},
		{`a AND b`, `a and b`},
		{`a And b`, `a and b`},
		{`a or b`, `a or b`},
		{`a OR b`, `a or b`},
		{`a and b or c`, `(a and b) or c`},
		{`a or b and c`, `a or (b and c)`},
		{`a or b c`, `a or (b and c)`},
		{`(a or b) c`, `(a or b) and c`},
		{`((a))`, `a`},
		{`not a`, `not a`},
		{`NOT a`, `not a`},
		{`a not b`, `a and not b`},
		{`a and not b`, `a and not b`},
		{`not not a`, `not not a`},
		{`not (a or b)`, `not (a or b)`},
		{`a or not b and c`, `a or (not b and c)`},
		{`"hello world"`, `"hello world"`},
		{`"say \"hi\""`, `"say \"hi\""`},
		{`"and"`, `"and"`},
		{`"a\\b"`, `"a\\b"`},
		{`key:value`, `key:value`},
		{`key: value`, `key:value`},
		{`key : "a b"`, `key:"a b"`},
		{`"odd key":v`, `"odd key":v`},
		{`k:""`, `k:""`},
		{`k:*`, `k:*`},
		{`k:v*`, `k:v*`},
		{`abc*`, `abc*`},
		{`ab?d`, `ab?d`},
		{`a*b?c`, `a*b?c`},
		{`a\*b`, `a\*b`},
		{`a\:b`, `a\:b`},
		{`a\ b`, `a\ b`},
		{`time:10:20:30`, `time:10\:20\:30`},
		{`__topic__:nginx`, `__topic__:nginx`},
		{`__source__:10.0.*`, `__source__:10.0.*`},
		{`__tag__:__path__:/var/log/a.log`, `__tag__:__path__:/var/log/a.log`},
		{`__tag__:__hostname__:"web 1"`, `__tag__:__hostname__:"web 1"`},
		{`status > 200`, `status > 200`},
		{`status>200`, `status > 200`},
		{`status >= 200`, `status >= 200`},
		{`latency < 1.5`, `latency < 1.5`},
		{`latency <= -2`, `latency <= -2`},
		{`status = 404`, `status = 404`},
		{`status in [200 299]`, `status in [200 299]`},
		{`status IN (200 299]`, `status in (200 299]`},
		{`latency in [0.5 *)`, `latency in [0.5 *)`},
		{`latency in (* 10)`, `latency in (* 10)`},
		{`error in (a b)`, `error and in and (a and b)`},
		{`level:error and status in [500 599] or __topic__:db`, `(level:error and status in [500 599]) or __topic__:db`},
		{`a.b.c:x`, `a.b.c:x`},
		{`中文 日志`, `中文 and 日志`},
		{`/api/v1/orders`, `/api/v1/orders`},
		{`GET /api`, `GET and /api`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			n, err := ParseSearch(c.in)
			require.NoError(t, err)
			require.Equal(t, c.want, n.String())
			// The rendering parses to the same tree.
			n2, err := ParseSearch(n.String())
			require.NoError(t, err)
			require.Equal(t, n.String(), n2.String())
		})
	}
}

func TestParseNodes(t *testing.T) {
	n, err := ParseSearch(`__tag__:__path__:/var/log/a.log`)
	require.NoError(t, err)
	require.Equal(t, &Term{Key: "__tag__:__path__", Value: "/var/log/a.log", Pos: 0}, n)

	n, err = ParseSearch(`x  k:*`)
	require.NoError(t, err)
	require.Equal(t, &Exists{Key: "k", Pos: 3}, n.(*And).Items[1])

	n, err = ParseSearch(`ab*c?`)
	require.NoError(t, err)
	require.Equal(t, &Term{Value: "ab*c?", Wild: []int{2, 4}}, n)

	n, err = ParseSearch(`"ab*"`)
	require.NoError(t, err)
	require.Equal(t, &Term{Value: "ab*", Phrase: true}, n)

	n, err = ParseSearch(`s in (1 2.5]`)
	require.NoError(t, err)
	require.Equal(t, &Range{Key: "s", Lo: "1", Hi: "2.5", HiIncl: true}, n)
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{`level:error and (a))`, `syntax error at 19: unexpected ")"`},
		{`)`, `syntax error at 0: unexpected ")"`},
		{`(a`, `syntax error at 2: expected ")" to close "(" at 0, found end of query`},
		{`()`, `syntax error at 1: empty parentheses`},
		{`a and`, `syntax error at 5: unexpected end of query`},
		{`a or or b`, `syntax error at 5: unexpected "or"`},
		{`and a`, `syntax error at 0: unexpected "and"`},
		{`not`, `syntax error at 3: unexpected end of query`},
		{`*abc`, `syntax error at 0: wildcard "*" at the start of a word`},
		{`k:?x`, `syntax error at 2: wildcard "?" at the start`},
		{`"abc`, `syntax error at 0: unterminated quoted string`},
		{`k:`, `syntax error at 2: expected a value after "k:", found end of query`},
		{`k:(a)`, `syntax error at 2: expected a value after "k:", found "("`},
		{`status > abc`, `syntax error at 9: expected a number after "status >"`},
		{`status >`, `syntax error at 8: expected a number`},
		{`st*s > 1`, `syntax error at 0: wildcard in key name`},
		{`__tag__:x`, `syntax error at 9: expected ":" after tag name "x"`},
		{`__tag__:`, `syntax error at 8: expected a tag name`},
		{`a\`, `syntax error at 1: escape \ at end of query`},
		{`a [b`, `syntax error at 2: unexpected "["`},
		{"a \xff", `syntax error at 2: invalid UTF-8`},
		{`a | `, `syntax error at 2: nothing after '|'`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			_, err := Parse(c.in)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
			var qe *Error
			require.True(t, errors.As(err, &qe))
			require.True(t, errors.Is(err, store.ErrInvalidQuery))
		})
	}
}

func TestParseSplitsSQL(t *testing.T) {
	q, err := Parse(` level:error  |  select count(*) as c `)
	require.NoError(t, err)
	require.True(t, q.HasSQL)
	require.Equal(t, "level:error", q.SearchText)
	require.Equal(t, "select count(*) as c", q.SQL)
	require.Equal(t, "select", q.Text[q.SQLOffset:q.SQLOffset+6])

	q, err = Parse(`"a|b" x\|y | select 1`)
	require.NoError(t, err)
	require.Equal(t, `"a|b" and x\|y`, q.Search.String())
	require.Equal(t, "select 1", q.SQL)

	q, err = Parse(`* | select a || b`)
	require.NoError(t, err)
	require.Equal(t, "select a || b", q.SQL)

	q, err = Parse(`error`)
	require.NoError(t, err)
	require.False(t, q.HasSQL)
	require.Empty(t, q.SQL)

	// SQL errors are reported at their offset in the whole query.
	q, err = Parse(`* | select read_csv('/etc/passwd')`)
	require.NoError(t, err)
	_, err = q.SandboxSQL(SandboxOptions{})
	var qe *Error
	require.True(t, errors.As(err, &qe))
	require.Equal(t, 11, qe.Pos)
}

func TestTerms(t *testing.T) {
	n, err := ParseSearch(`error and not warn or (k:v* and s > 1 and "a b")`)
	require.NoError(t, err)
	var got []string
	for _, x := range Terms(n) {
		got = append(got, x.String())
	}
	require.Equal(t, []string{"error", "k:v*", `"a b"`}, got)
}
