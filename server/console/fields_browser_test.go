package console_test

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// topValue is one row of a field's top values as the sidebar shows it.
type topValue struct {
	V string `json:"v"`
	N string `json:"n"`
	P string `json:"p"`
}

// expectTop counts values the way the sidebar ranks them: count
// descending, then value.
func expectTop(values []string, total int) []topValue {
	n := map[string]int{}
	for _, v := range values {
		n[v]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(n[b]-n[a], cmp.Compare(a, b)) })
	out := make([]topValue, 0, len(keys))
	for _, k := range keys {
		p := fmt.Sprintf("%.1f%%", 100*float64(n[k])/float64(total))
		if n[k] == total {
			p = "100%"
		}
		out = append(out, topValue{V: k, N: strconv.Itoa(n[k]), P: p})
	}
	return out
}

// TestBrowserFieldTopValues checks that a field the user opens in the
// sidebar shows its top values over the whole search and time range (a
// "search | SQL" query), not just over the loaded page, and that keys SQL
// cannot read keep the loaded-rows counts and say so.
func TestBrowserFieldTopValues(t *testing.T) {
	chromiumPath(t)
	e := start(t)
	e.setup("web", "access")
	now := time.Now().Truncate(time.Second)
	// 300 logs, the page loads the newest 100. Among those 503 dominates;
	// over the whole range 200 does.
	logs := make([]accessLog, 300)
	for i := range logs {
		st := "200"
		if (i < 100 && i%4 != 0) || (i >= 100 && i%10 == 0) {
			st = "503"
		}
		logs[i] = accessLog{t: now.Add(-time.Duration(i) * 5 * time.Second), method: "GET", path: "/p" + strconv.Itoa(i%3), status: st, latency: i}
	}
	e.ingest("web", "access", logs)
	statuses := func(ls []accessLog) []string {
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = l.status
		}
		return out
	}
	whole := expectTop(statuses(logs), len(logs))
	loaded := expectTop(statuses(logs[:100]), 100)
	require.NotEqual(t, whole[0].V, loaded[0].V, "the test data must make the loaded page misleading")

	p := newPage(t, e, 1280, 900)
	p.signInAsAdmin()

	logCalls := `performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/logstores/access/logs')).length`
	readTop := func(key string) []topValue {
		t.Helper()
		return evalJS[[]topValue](p, fmt.Sprintf(`[...document.querySelectorAll('details.field[data-key=%q] .fval')].map((b) => ({
			v: b.querySelector('.v').textContent, n: b.querySelector('.n').textContent, p: b.querySelector('.p').textContent }))`, key))
	}

	p.goTo("/p/web/logstores/access?range=1h")
	p.wait("first page", `document.querySelectorAll('ol.logs > li').length === 100 && document.querySelector('#summary').innerText.includes('300 logs match') && !!document.querySelector('details.field[data-key=status]')`)
	searchCalls := evalJS[int](p, logCalls)
	require.Equal(t, 0, evalJS[int](p, `document.querySelectorAll('details.field[open]').length`), "fields start closed")

	t.Run("opened field counts the whole range", func(t *testing.T) {
		p.tb = t
		p.do("open status", chromedp.Click(`details.field[data-key=status] summary`))
		p.wait("whole-range counts", `!!document.querySelector('details.field[data-key=status] .fsrc[data-source=range]')`)
		require.Equal(t, whole, readTop("status"))
		require.Contains(t, p.text(`details.field[data-key=status]`), "Of the 300 matching logs")
		require.Equal(t, searchCalls+1, evalJS[int](p, logCalls), "one query for the opened field, none for the others")
		p.screenshot("field-top-values", false)
	})

	t.Run("key SQL cannot read keeps loaded-rows counts", func(t *testing.T) {
		p.tb = t
		key := "__tag__:__path__"
		p.do("open tag", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('details.field[data-key=%q] summary').click()`, key)))
		p.wait("loaded counts", fmt.Sprintf(`!!document.querySelector('details.field[data-key=%q] .fsrc[data-source=loaded]')`, key))
		require.Contains(t, p.text(fmt.Sprintf(`details.field[data-key=%q]`, key)), "From the 100 loaded logs — add a field index for counts over the whole range")
		require.Equal(t, []topValue{{V: "/var/log/nginx/access.log", N: "100", P: "100%"}}, readTop(key))
		require.Equal(t, searchCalls+1, evalJS[int](p, logCalls), "no query for a key SQL cannot read")
	})

	t.Run("clicking a value filters and the open field is recounted", func(t *testing.T) {
		p.tb = t
		p.do("click 503", chromedp.Click(`details.field[data-key=status] button.fval[data-value="503"]`))
		p.wait("filtered", fmt.Sprintf(`document.querySelector('#q').value === 'status:503' && document.querySelector('#summary').innerText.includes('%s logs match')`, whole[1].N))
		p.wait("recounted", `document.querySelector('details.field[data-key=status] .fsrc[data-source=range]')?.textContent.includes('Of the 95 matching')`)
		require.Equal(t, []topValue{{V: "503", N: whole[1].N, P: "100%"}}, readTop("status"))
	})

	t.Run("an answer for an older search is ignored", func(t *testing.T) {
		p.tb = t
		// Hold back the top-values answers of every search but status:503
		// (and let them through even when the page cancels them), so the
		// older search's answer arrives last.
		p.do("slow top values", chromedp.Evaluate[chromedp.Void](`(() => {
			window.__held = 0; window.__released = 0; window.__fetch = window.fetch;
			window.fetch = (u, o) => {
				const b = o && typeof o.body === 'string' ? o.body : '';
				if (!b.includes('as v, count(*) as c') || b.includes('status:503')) return window.__fetch(u, o);
				window.__held++;
				return new Promise((r) => setTimeout(r, 500)).then(() => window.__fetch(u, { ...o, signal: undefined })).finally(() => { window.__released++; });
			};
		})()`))
		p.setField("#q", "")
		p.do("search everything", chromedp.Click("#run"))
		p.wait("held answer", `window.__held === 1`)
		p.setField("#q", "status:503")
		p.do("search 503", chromedp.Click("#run"))
		p.wait("recounted", `document.querySelector('details.field[data-key=status] .fsrc[data-source=range]')?.textContent.includes('Of the 95 matching')`)
		p.wait("older answer arrived", `window.__released === 1`)
		time.Sleep(100 * time.Millisecond) // let the page handle it
		require.Equal(t, []topValue{{V: "503", N: whole[1].N, P: "100%"}}, readTop("status"))
		p.do("restore fetch", chromedp.Evaluate[chromedp.Void](`window.fetch = window.__fetch`))
	})

	t.Run("query error shows in the sidebar", func(t *testing.T) {
		p.tb = t
		// The page read the index before "method" lost its field index:
		// SQL over it now fails, and only the sidebar says so.
		c := e.SDK(adminID, adminSecret)
		idx, err := c.GetIndex("web", "access")
		require.NoError(t, err)
		delete(idx.Keys, "method")
		require.NoError(t, c.UpdateIndex("web", "access", *idx))
		p.do("open method", chromedp.Click(`details.field[data-key=method] summary`))
		p.wait("error in the sidebar", `!!document.querySelector('details.field[data-key=method] .banner.error[role=alert]')`)
		require.Contains(t, p.text(`details.field[data-key=method]`), "From the")
		require.Empty(t, p.text("#q-err"), "the page itself did not fail")
		require.Equal(t, 95, evalJS[int](p, `document.querySelectorAll('ol.logs > li').length`))
	})
}
