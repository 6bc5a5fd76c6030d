package console_test

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestBrowserModules checks the pure functions of the page's modules in
// Chromium itself (the modules are imported as the page imports them).
func TestBrowserModules(t *testing.T) {
	chromiumPath(t)
	e := start(t)
	p := newPage(t, e, 800, 600)
	// favicon.svg: a console URL that does not start the app.
	p.do("open", chromedp.Navigate(e.base+"/console/favicon.svg"))
	run := func(js string) map[string]any {
		t.Helper()
		return evalJS[map[string]any](p, `(async () => { `+js+` })()`, chromedp.EvalAwaitPromise)
	}

	out := run(`const { addTerm } = await import('/console/search.js');
		return {
			empty: addTerm('', '', 'status', '500'),
			star: addTerm('*', '*', 'status', '500'),
			and: addTerm('level:error', 'level:error', 'path', '/api/users'),
			sql: addTerm('error | select count(*) as n', 'error', 'method', 'GET'),
			quote: addTerm('', '', 'msg', 'say "hi" \\ bye'),
			tag: addTerm('', '', '__tag__:__path__', '/var/log/a.log'),
			oddKey: addTerm('', '', 'user agent', 'curl'),
			not: addTerm('level:error', 'level:error', 'path', '/healthz', true),
			notSQL: addTerm('* | select count(*) as n', '*', 'status', '200', true),
		};`)
	require.Equal(t, map[string]any{
		"empty":  "status:500",
		"star":   "status:500",
		"and":    `level:error and path:"/api/users"`,
		"sql":    "error and method:GET | select count(*) as n",
		"quote":  `msg:"say \"hi\" \\ bye"`,
		"tag":    `__tag__:__path__:"/var/log/a.log"`,
		"oddKey": `"user agent":curl`,
		"not":    `level:error and not path:"/healthz"`,
		"notSQL": "not status:200 | select count(*) as n",
	}, out)

	out = run(`const { toCSV, columnsOf } = await import('/console/export.js');
		return { csv: toCSV(['a', 'b'], [{ a: 'x,y', b: 'say "hi"' }, { a: '=1+1', b: '-5' }, { a: ' pad', b: 'line\nbreak' }, { b: '1' }]),
			cols: columnsOf([{ a: 1, b: 2 }, { c: 3, a: 4 }]) };`)
	require.Equal(t, map[string]any{
		"csv":  "a,b\r\n\"x,y\",\"say \"\"hi\"\"\"\r\n'=1+1,-5\r\n\" pad\",\"line\nbreak\"\r\n,1\r\n",
		"cols": []any{"a", "b", "c"},
	}, out, "CSV quotes commas, quotes, line breaks and edge spaces, and defuses formulas but not numbers")

	out = run(`const { topValuesQuery } = await import('/console/search.js');
		return { star: topValuesQuery('', 'status'), search: topValuesQuery(' level:error ', 'say "hi"') };`)
	require.Equal(t, map[string]any{
		"star":   `* | select "status" as v, count(*) as c group by v order by c desc, v limit 10`,
		"search": `level:error | select "say ""hi""" as v, count(*) as c group by v order by c desc, v limit 10`,
	}, out)

	out = run(`const { chartPlan, timeValue } = await import('/console/charts.js');
		const rows = (cols, vals) => vals.map((v) => Object.fromEntries(cols.map((c, i) => [c, v[i]])));
		return {
			status: chartPlan(['status', 'n'], rows(['status', 'n'], [['200', '10'], ['500', '2']])),
			path: chartPlan(['path', 'n'], rows(['path', 'n'], [['/a', '10'], ['/b', '2']])),
			epoch: chartPlan(['t', 'n', 'avg'], rows(['t', 'n', 'avg'], [['1795430000', '3', '1.5'], ['1795430060', '4', '2']])),
			iso: chartPlan(['minute', 'n'], rows(['minute', 'n'], [['2026-11-23 10:00:00', '3'], ['2026-11-23 10:01:00', '4']])),
			one: chartPlan(['n'], rows(['n'], [['3']])),
			text: chartPlan(['a', 'b'], rows(['a', 'b'], [['x', 'y']])),
			tv: [timeValue('1795430000'), timeValue('1795430000123'), timeValue('2026-01-02T03:04:05Z'), timeValue('hello')],
		};`)
	require.Equal(t, "bar", out["status"].(map[string]any)["kind"], "a numeric GROUP BY key is a category")
	require.Equal(t, "status", out["status"].(map[string]any)["x"])
	require.Equal(t, "bar", out["path"].(map[string]any)["kind"])
	epoch := out["epoch"].(map[string]any)
	require.Equal(t, "line", epoch["kind"])
	require.Equal(t, "t", epoch["x"])
	require.Equal(t, []any{"n", "avg"}, epoch["series"])
	require.Equal(t, "line", out["iso"].(map[string]any)["kind"])
	require.Nil(t, out["one"].(map[string]any)["kind"])
	require.Nil(t, out["text"].(map[string]any)["kind"])
	tv := out["tv"].([]any)
	require.EqualValues(t, 1795430000, tv[0])
	require.InDelta(t, 1795430000.123, tv[1], 1e-6)
	require.EqualValues(t, 1767323045, tv[2])
	require.Nil(t, tv[3], "NaN is not a time")

	out = run(`const { locate } = await import('/console/configs.js');
		const text = JSON.stringify({configName: 'a', inputDetail: {key: ['regex'], regex: '(', filterRegex: ['x', '(']}}, null, 2);
		return { regex: locate(text, 'inputDetail.regex'), at: text.indexOf('"regex": "("'), filter: locate(text, 'inputDetail.filterRegex[1]'),
			filterAt: text.indexOf('"filterRegex"'), doc: locate(text, '(document)') };`)
	require.Equal(t, out["at"], out["regex"], "the key, not the same word as a value earlier")
	require.Equal(t, out["filterAt"], out["filter"])
	require.EqualValues(t, -1, out["doc"])
}
