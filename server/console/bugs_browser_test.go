package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// emulate runs one DevTools Emulation command on the page.
func emulate[P any](p *page, what string, cmd cdp.Command[P, cdp.Empty], params P) {
	p.tb.Helper()
	p.do(what, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cmd, params)
		return err
	}))
}

// contrastJS lists visible text whose contrast with its background is
// below WCAG AA (4.5:1, or 3:1 for large text), with the colours and the
// ratio. Backgrounds with alpha are blended over their ancestors'.
const contrastJS = `(() => {
	const parse = (c) => {
		let m = /^rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)$/.exec(c);
		if (m) return [+m[1] / 255, +m[2] / 255, +m[3] / 255, m[4] === undefined ? 1 : +m[4]];
		m = /^color\(srgb ([\d.e-]+) ([\d.e-]+) ([\d.e-]+)(?: \/ ([\d.e-]+))?\)$/.exec(c);
		if (m) return [+m[1], +m[2], +m[3], m[4] === undefined ? 1 : +m[4]];
		return null;
	};
	const over = (top, bottom) => { const a = top[3]; return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]); };
	const lum = (c) => { const f = (v) => (v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4)); return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
	const bgOf = (el) => {
		const layers = [];
		for (let e = el; e; e = e.parentElement) {
			const c = parse(getComputedStyle(e).backgroundColor);
			if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
		}
		let bg = parse(getComputedStyle(document.documentElement).backgroundColor) || [1, 1, 1, 1];
		if (bg[3] < 1) bg = over(bg, matchMedia('(prefers-color-scheme: dark)').matches ? [0, 0, 0, 1] : [1, 1, 1, 1]);
		for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
		return bg;
	};
	const out = [];
	for (const el of document.querySelectorAll('body *')) {
		if (!['#text'].some(() => [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))) continue;
		if (el.closest('[hidden], .sr-only, svg, option')) continue;
		const r = el.getBoundingClientRect();
		if (!r.width || !r.height) continue;
		const st = getComputedStyle(el);
		if (st.visibility === 'hidden' || +st.opacity === 0) continue;
		let fg = parse(st.color);
		if (!fg) continue;
		let op = 1;
		for (let e = el; e; e = e.parentElement) op *= +getComputedStyle(e).opacity;
		if (op < 0.6) continue; // disabled controls: WCAG exempts them
		const bg = bgOf(el);
		fg = over([fg[0], fg[1], fg[2], fg[3] * op], bg);
		const l1 = lum(fg), l2 = lum(bg);
		const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
		const size = parseFloat(st.fontSize), bold = +st.fontWeight >= 700;
		const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
		if (ratio < need) out.push(el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).replace(/ /g, '.') : '') + ' "' + el.textContent.trim().slice(0, 30) + '" ' + st.color + ' on ' + bgOf(el).map((v) => Math.round(v * 255)).slice(0, 3).join(',') + ' = ' + ratio.toFixed(2));
	}
	return out;
})()`

func (p *page) contrastProblems() []string {
	p.tb.Helper()
	return evalJS[[]string](p, contrastJS)
}

// TestBrowserRegressions reproduces, each in its own subtest, bugs found
// walking through the console in Chromium; each failed before its fix.
func TestBrowserRegressions(t *testing.T) {
	chromiumPath(t)
	e := start(t)
	e.setup("web", "access")
	now := time.Now().Truncate(time.Second)
	logs := sampleLogs(now, 240, 5*time.Second)
	e.ingest("web", "access", logs)
	p := newPage(t, e, 1280, 860)
	p.signInAsAdmin()

	results := `document.querySelectorAll('ol.logs > li').length`
	bars := `[...document.querySelectorAll('#histogram g.bar')]`

	t.Run("histogram follows a zoom, and a second click zooms within it", func(t *testing.T) {
		p.tb = t
		p.goTo("/p/web/logstores/access?range=1h")
		p.wait("results", results+` === 100`)
		// Click (which focuses the bar) the busiest but one bar.
		pick := func() (int64, int64) {
			t.Helper()
			b := evalJS[[]int64](p, `(() => { const g = `+bars+`.filter((g) => g.dataset.count !== '0'); const x = g[Math.max(0, g.length - 2)]; return [Number(x.dataset.from), Number(x.dataset.to)]; })()`)
			return b[0], b[1]
		}
		from, to := pick()
		p.do("click bar", chromedp.Click(fmt.Sprintf(`#histogram g.bar[data-from="%d"]`, from)))
		p.wait("histogram redrawn for the zoomed range", fmt.Sprintf(`location.hash.includes('from=%d') && (() => { const b = %s; return b.length > 1 && Number(b[0].dataset.from) === %d && Number(b[b.length - 1].dataset.to) === %d; })()`, from, bars, from, to))
		from2, to2 := pick()
		require.GreaterOrEqual(t, from2, from)
		require.LessOrEqual(t, to2, to)
		p.do("click bar again", chromedp.Click(fmt.Sprintf(`#histogram g.bar[data-from="%d"]`, from2)))
		p.wait("zoomed within the zoom", fmt.Sprintf(`location.hash.includes('from=%d') && location.hash.includes('to=%d')`, from2, to2))
		p.wait("keyboard focus stays on the histogram", `!!document.activeElement.closest('#histogram')`)
	})

	t.Run("SQL times and the histogram agree outside UTC", func(t *testing.T) {
		p.tb = t
		const zone = "Asia/Shanghai"
		loc, err := time.LoadLocation(zone)
		require.NoError(t, err)
		emulate(p, "time zone", emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone})
		defer emulate(p, "time zone off", emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{})
		q := "* | select date_trunc('minute', from_unixtime(__time__)) as t, count(*) as n group by t order by t"
		p.goTo("/p/web/logstores/access?range=1h&q=" + url.QueryEscape(q))
		p.wait("line chart", `!!document.querySelector('#chart figure[data-kind=line] circle')`)
		want := map[int64]int{}
		for _, l := range logs {
			want[l.t.Unix()/60*60]++
		}
		var wantTitles []string
		for m, n := range want {
			wantTitles = append(wantTitles, fmt.Sprintf("%s n=%d", time.Unix(m, 0).In(loc).Format(time.DateTime), n))
		}
		slices.Sort(wantTitles)
		titles := evalJS[[]string](p, `[...document.querySelectorAll('#chart circle title')].map((t) => t.textContent).sort()`)
		require.Equal(t, wantTitles, titles, "chart points at the minutes' local times")
		first := slices.Min(slices.Collect(func(yield func(int64) bool) {
			for m := range want {
				if !yield(m) {
					return
				}
			}
		}))
		cell := p.text("#sql-table tbody tr:first-child td:first-child")
		require.Equal(t, time.Unix(first, 0).In(loc).Format(time.DateTime), cell, "the table shows times in the browser's zone, as the histogram does")
		// The histogram bar holding that minute says the same local time.
		label := evalJS[string](p, fmt.Sprintf(`(() => { const g = [...document.querySelectorAll('#histogram g.bar')].find((g) => Number(g.dataset.from) <= %d && %d < Number(g.dataset.to)); return g ? g.getAttribute('aria-label') : ''; })()`, first, first))
		require.NotEmpty(t, label)
		require.Contains(t, label, time.Unix(first, 0).In(loc).Format("2006-01-02 15:"))
	})

	t.Run("a shared link survives signing in from a fresh browser", func(t *testing.T) {
		p2 := newPage(t, e, 1280, 860)
		target := "#/p/web/logstores/access?q=status%3A500&range=1h"
		p2.do("open link", chromedp.Navigate(e.base+"/console/"+target))
		p2.wait("sign-in form", `!!document.querySelector('#ak-id')`)
		p2.setField("#ak-id", adminID)
		p2.setField("#ak-secret", adminSecret)
		p2.do("sign in", chromedp.Click("form.signin button[type=submit]"))
		p2.wait("the shared search", fmt.Sprintf(`location.hash === %q && document.querySelector('#summary')?.innerText.includes('%d logs match')`, target, countStatus(logs, "500")))
		require.Equal(t, "status:500", evalJS[string](p2, `document.querySelector('#q').value`))
	})

	stale := func(t *testing.T) {
		t.Helper()
		require.Zero(t, evalJS[int](p, results), "no results of the previous query")
		require.Zero(t, evalJS[int](p, `document.querySelectorAll('#histogram g.bar').length`), "no histogram of the previous query")
		require.Zero(t, evalJS[int](p, `document.querySelectorAll('details.field').length`), "no fields of the previous query")
		require.Zero(t, evalJS[int](p, `document.querySelectorAll('#sql-table').length`), "no SQL table of the previous query")
		require.Empty(t, p.text("#summary"))
	}

	t.Run("an error clears the previous results", func(t *testing.T) {
		p.tb = t
		p.goTo("/p/web/logstores/access?range=1h")
		p.wait("results", results+` === 100 && !!document.querySelector('details.field')`)
		p.setField("#q", "status:500 and (")
		p.do("run", chromedp.Click("#run"))
		p.wait("syntax error", `!!document.querySelector('#q-err [role=alert]')`)
		stale(t)

		p.goTo("/p/web/logstores/access?range=1h&q=" + url.QueryEscape("* | select status, count(*) as n group by status"))
		p.wait("SQL table", `document.querySelectorAll('#sql-table tbody tr').length === 3`)
		p.setField("#q", "* | select nosuchcolumn")
		p.do("run", chromedp.Click("#run"))
		p.wait("SQL error", `!!document.querySelector('#q-err [role=alert]')`)
		stale(t)
	})

	t.Run("SQL errors point into the user's query, not the server's", func(t *testing.T) {
		p.tb = t
		q := "* | select status, nosuchcolumn"
		p.goTo("/p/web/logstores/access?range=1h&q=" + url.QueryEscape(q))
		p.wait("SQL error", `!!document.querySelector('#q-err [role=alert]')`)
		msg := p.text("#q-err")
		for _, internal := range []string{"Binder Error", `FROM "log"`, "LIMIT 100", "read_parquet", "__line__", "WITH", "LINE 1"} {
			require.NotContains(t, msg, internal, "the error shows the server's SQL")
		}
		require.Contains(t, msg, "nosuchcolumn")
		require.Contains(t, msg, fmt.Sprintf("at character %d", strings.Index(q, "nosuchcolumn")+1))
		require.Equal(t, "n", p.text("#q-err mark"))
		require.Equal(t, strings.Index(q, "nosuchcolumn"), evalJS[int](p, `document.querySelector('#q').selectionStart`), "the caret is put there")

		// An error DuckDB cannot place still reads as the user's problem.
		p.goTo("/p/web/logstores/access?range=1h&q=" + url.QueryEscape("* | select cast(method as bigint) as m"))
		p.wait("conversion error", `!!document.querySelector('#q-err [role=alert]')`)
		msg = p.text("#q-err")
		require.Contains(t, msg, "Could not convert string")
		for _, internal := range []string{`FROM "log"`, "LIMIT 100", "read_parquet", "__line__", "WITH"} {
			require.NotContains(t, msg, internal)
		}
	})

	t.Run("changing the time range or rows runs the search", func(t *testing.T) {
		p.tb = t
		p.goTo("/p/web/logstores/access?range=1h")
		p.wait("results", results+` === 100 && document.querySelector('#summary').innerText.includes('240 logs match')`)
		in15 := 0
		for _, l := range logs {
			if l.t.After(time.Now().Add(-15 * time.Minute)) {
				in15++
			}
		}
		p.setField("#range", "15m")
		p.wait("re-run for 15 minutes", fmt.Sprintf(`location.hash.includes('range=15m') && /\b(%d|%d) logs match/.test(document.querySelector('#summary').innerText)`, in15, in15-1))
		p.setField("#range", "4h")
		p.wait("re-run for 4 hours", `location.hash.includes('range=4h') && document.querySelector('#summary').innerText.includes('240 logs match')`)
		p.setField("#rows", "500")
		p.wait("all 240 rows", results+` === 240 && location.hash.includes('rows=500')`)
	})

	t.Run("sidebar counts keys SQL reads without Analytics", func(t *testing.T) {
		p.tb = t
		c := e.SDK(adminID, adminSecret)
		idx, err := c.GetIndex("web", "access")
		require.NoError(t, err)
		k := idx.Keys["method"]
		k.DocValue = false
		idx.Keys["method"] = k
		require.NoError(t, c.UpdateIndex("web", "access", *idx))
		p.goTo("/p/web/logstores/access?range=1h")
		p.wait("fields", results+` === 100 && !!document.querySelector('details.field[data-key=method]')`)
		p.do("open method", chromedp.Click(`details.field[data-key=method] summary`))
		p.wait("whole-range counts", `!!document.querySelector('details.field[data-key=method] .fsrc[data-source=range]')`)
		require.Contains(t, p.text(`details.field[data-key=method]`), "Of the 240 matching logs")
	})

	t.Run("config checks its target logstore and shows every problem", func(t *testing.T) {
		p.tb = t
		p.goTo("/p/web/configs/+new")
		p.wait("editor", `document.querySelector('#cfg-problems')?.innerText.includes('Valid config') || document.querySelector('#cfg-problems')?.innerText.includes('problem')`)
		cfg := func(detail map[string]any, out map[string]any) string {
			b, _ := json.MarshalIndent(map[string]any{"configName": "app-logs", "inputType": "file", "inputDetail": detail,
				"outputType": "LogService", "outputDetail": out}, "", "  ")
			return string(b)
		}
		detail := map[string]any{"logType": "common_reg_log", "logPath": "/var/log/app", "filePattern": "*.log", "regex": "(\\S+) (.*)", "key": []string{"level", "message"}}
		p.setField("#cfg-json", cfg(detail, map[string]any{"projectName": "web", "logstoreName": "nosuch"}))
		p.wait("missing logstore", `document.querySelector('#cfg-problems [role=alert]')?.innerText.includes('outputDetail.logstoreName: logstore "nosuch" does not exist')`)
		require.NotContains(t, p.text("#cfg-problems"), "Valid config")
		p.setField("#cfg-json", cfg(detail, map[string]any{"projectName": "nosuchproject", "logstoreName": "access"}))
		p.wait("missing project", `document.querySelector('#cfg-problems [role=alert]')?.innerText.includes('outputDetail.projectName')`)

		// A type error and a validation error at once: both listed.
		bad := map[string]any{"logType": "common_reg_log", "logPath": "/var/log/app", "filePattern": "*.log", "regex": "(\\S+) (.*", "key": []string{"level", "message"}, "maxDepth": "deep"}
		p.setField("#cfg-json", cfg(bad, map[string]any{"projectName": "web", "logstoreName": "access"}))
		p.wait("both problems", `(() => { const t = document.querySelector('#cfg-problems [role=alert]')?.innerText || ''; return t.includes('inputDetail.maxDepth') && t.includes('inputDetail.regex'); })()`)
	})

	t.Run("index editor fits a phone, and text contrast meets WCAG AA", func(t *testing.T) {
		p.tb = t
		p.do("phone", chromedp.EmulateViewport(390, 844))
		p.goTo("/p/web/logstores/access/index")
		p.wait("index form", `!!document.querySelector('#index-form tbody tr')`)
		wide := evalJS[[]string](p, `[...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1 && !el.parentElement.closest('.table-scroll')).map((el) => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right))`)
		require.Empty(t, wide, "elements wider than a 390 px phone")
		require.LessOrEqual(t, evalJS[int](p, `document.documentElement.scrollWidth - document.documentElement.clientWidth`), 0, "no sideways scrolling in the index editor at 390 px")
		p.do("desktop", chromedp.EmulateViewport(1280, 860))

		for _, scheme := range []string{"light", "dark"} {
			emulate(p, scheme, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
			for _, route := range []string{"/", "/p/web/logstores/access?range=1h", "/p/web/logstores/access/index", "/p/web/configs/+new"} {
				p.goTo(route)
				p.wait("page "+route, `document.body.dataset.ready && !document.querySelector('main .loading') && (document.body.dataset.page !== 'search' || document.querySelectorAll('ol.logs > li').length > 0)`)
				p.wait("settled", `!document.querySelector('#summary') || !document.querySelector('#summary').innerText.includes('Searching')`)
				require.Empty(t, p.contrastProblems(), "%s mode, %s", scheme, route)
			}
		}
		emulate(p, "scheme off", emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})
	})

}
