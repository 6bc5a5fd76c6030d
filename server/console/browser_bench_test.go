package console_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// BenchmarkSearchRender measures, in headless Chromium, how long the search
// page takes from the moment every GetLogs page and the histogram have
// answered (performance mark "sluice:answered") to the moment 1,000
// results, the field sidebar and the histogram are in the DOM and a frame
// has been produced ("sluice:rendered"). Reported as ms-render/op; the
// whole search (request → rendered, 10 GetLogs pages + histogram against
// the embedded DuckDB store) as ms-total/op.
func BenchmarkSearchRender(b *testing.B) {
	chromiumPath(b)
	e := start(b)
	e.setup("web", "access")
	now := time.Now().Truncate(time.Second)
	e.ingest("web", "access", sampleLogs(now, 5000, 500*time.Millisecond))
	p := newPage(b, e, 1280, 900)
	p.signInAsAdmin()
	p.goTo("/p/web/logstores/access?range=1h&rows=1000")
	p.wait("1000 results", `document.querySelectorAll('ol.logs > li').length === 1000 && !!window.__sluiceLastRender`)

	var render, total, dom float64
	b.ResetTimer()
	for b.Loop() {
		p.do("reset", chromedp.Evaluate[chromedp.Void](`window.__sluiceLastRender = null`))
		p.do("search", chromedp.Click("#run"))
		p.wait("rendered", `!!window.__sluiceLastRender && window.__sluiceLastRender.rows === 1000`)
		r := evalJS[map[string]float64](p, `window.__sluiceLastRender`)
		render += r["ms"]
		total += r["total"]
		dom += r["dom"]
	}
	b.ReportMetric(render/float64(b.N), "ms-render/op")
	b.ReportMetric(total/float64(b.N), "ms-total/op")
	b.ReportMetric(dom/float64(b.N), "ms-dom/op")
	if n := evalJS[int](p, `document.querySelectorAll('ol.logs > li').length`); n != 1000 {
		b.Fatalf("rendered %d results, want 1000", n)
	}
}
