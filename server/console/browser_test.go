package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/agenttest"
	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/server/meta"
)

// chromiumPath finds the browser hack/ensure-chromium.sh installs; the
// test skips without it unless SLUICE_REQUIRE_ALL=1.
func chromiumPath(tb testing.TB) string {
	tb.Helper()
	p := os.Getenv("SLUICE_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(p); err != nil {
		testenv.SkipOrFail(tb, "chromium not found at %s: run hack/ensure-chromium.sh (or set SLUICE_CHROMIUM)", p)
	}
	return p
}

// artifactsDir is where screenshots go: <repo>/artifacts/console
// (gitignored). SLUICE_UPDATE_DOCS_IMG=1 also writes the ones the docs use
// into docs/img.
func artifactsDir(tb testing.TB) string {
	tb.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "artifacts", "console"))
	require.NoError(tb, err)
	require.NoError(tb, os.MkdirAll(dir, 0o755))
	return dir
}

// page is one headless Chromium tab on the console.
type page struct {
	tb  testing.TB
	ctx context.Context
	e   *env

	mu         sync.Mutex
	exceptions []string
}

func newPage(tb testing.TB, e *env, width, height int) *page {
	tb.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(tb)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.WindowSize(width, height),
		chromedp.UserDataDir(tb.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	p := &page{tb: tb, ctx: ctx, e: e}
	// Start the browser with no deadline (a timeout on the first Run would
	// bind the browser's life to it).
	msgs := chromedp.Console(ctx)
	require.NoError(tb, chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				p.mu.Lock()
				p.exceptions = append(p.exceptions, m.String())
				p.mu.Unlock()
			}
		}
	}()
	tb.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		<-done
		p.mu.Lock()
		defer p.mu.Unlock()
		require.Empty(tb, p.exceptions, "uncaught JavaScript exceptions or CSP violations")
	})
	return p
}

func (p *page) fail(err error, what string) {
	p.tb.Helper()
	if err == nil {
		return
	}
	if shot, serr := chromedp.Run(context.WithoutCancel(p.ctx), chromedp.CaptureScreenshot()); serr == nil {
		name := filepath.Join(artifactsDir(p.tb), "FAILED-"+strings.ReplaceAll(p.tb.Name(), "/", "_")+".png")
		_ = os.WriteFile(name, shot, 0o644)
		p.tb.Logf("screenshot of the failure: %s", name)
	}
	body, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.querySelector('main') ? document.querySelector('main').innerText.slice(0, 2000) : ''`))
	p.tb.Fatalf("%s: %v\npage text:\n%s", what, err, body)
}

// do runs actions with a deadline.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	p.fail(chromedp.Do(ctx, actions...), what)
}

// wait polls a JavaScript condition until it is true.
func (p *page) wait(what, cond string) {
	p.tb.Helper()
	// Generous: CI machines are shared; a condition that holds returns at
	// once.
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(25*time.Millisecond)))
		// A navigation replaced the document under the poll: poll the
		// new one.
		if err != nil && ctx.Err() == nil && (strings.Contains(err.Error(), "Cannot find context") || strings.Contains(err.Error(), "context was destroyed")) {
			continue
		}
		p.fail(err, "waiting for "+what+" ("+cond+")")
		return
	}
}

func evalJS[T any](p *page, js string, opts ...chromedp.EvaluateOption) T {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	p.fail(err, "evaluate "+js)
	return v
}

// goTo opens a console route (the part after #) in a freshly loaded page
// and waits until the route has rendered (app.js sets body[data-ready]),
// so no condition can match what the previous page left on screen.
func (p *page) goTo(route string) {
	p.tb.Helper()
	p.do("navigate to "+route, chromedp.Navigate("about:blank"), chromedp.Navigate(p.e.base+"/console/#"+route))
	p.wait("route "+route+" rendered", `!!document.body.dataset.ready`)
}

// signInAsAdmin opens the console and signs in with the admin key.
func (p *page) signInAsAdmin() {
	p.tb.Helper()
	p.do("open", chromedp.Navigate(p.e.base+"/console/"))
	p.wait("sign-in form", `!!document.querySelector('#ak-id')`)
	p.setField("#ak-id", adminID)
	p.setField("#ak-secret", adminSecret)
	p.do("sign in", chromedp.Click("form.signin button[type=submit]"))
	p.wait("signed in", `document.body.dataset.page === 'projects'`)
}

// setField sets a form field as typing would (input and change events).
func (p *page) setField(sel, value string) {
	p.tb.Helper()
	js := fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false;
		el.value = %s; el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`,
		sel, jsString(value))
	require.True(p.tb, evalJS[bool](p, js), "no element %s", sel)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (p *page) text(sel string) string {
	p.tb.Helper()
	return evalJS[string](p, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ''}).innerText`, sel))
}

// screenshot saves the viewport as name.png under artifacts/console (and
// docs/img with SLUICE_UPDATE_DOCS_IMG=1 when docs is set).
func (p *page) screenshot(name string, docs bool) {
	p.tb.Helper()
	// Park the mouse in a corner so no hover state shows.
	p.do("move mouse away", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 1, 1))
	shot, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	p.fail(err, "screenshot")
	require.NoError(p.tb, os.WriteFile(filepath.Join(artifactsDir(p.tb), name+".png"), shot, 0o644))
	if docs && os.Getenv("SLUICE_UPDATE_DOCS_IMG") == "1" {
		require.NoError(p.tb, os.WriteFile(filepath.Join("..", "..", "docs", "img", "console-"+name+".png"), shot, 0o644))
	}
}

// checkLabels asserts every visible form control has an accessible name
// (a <label for>, a wrapping label or aria-label).
func (p *page) checkLabels(where string) {
	p.tb.Helper()
	missing := evalJS[[]string](p, `[...document.querySelectorAll('input, select, textarea')]
		.filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
		.filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
		.map((el) => el.outerHTML.slice(0, 120))`)
	require.Empty(p.tb, missing, "form controls without a label on %s", where)
}

// TestBrowserConsole drives the console in real headless Chromium against
// a real in-process server, the way a user would: sign in, create a
// project, logstore and index, ingest with the SDK, search, zoom, filter
// from the sidebar, run SQL and see the chart, tail live, manage a
// machine group with a real agent heartbeating, and edit a config.
func TestBrowserConsole(t *testing.T) {
	chromiumPath(t)
	e := start(t)
	p := newPage(t, e, 1280, 860)
	now := time.Now().Truncate(time.Second)
	logs := sampleLogs(now, 240, 5*time.Second)

	t.Run("sign in", func(t *testing.T) {
		p.tb = t
		p.do("open console", chromedp.Navigate(e.base+"/console/"))
		p.wait("sign-in form", `location.hash === '#/signin' && !!document.querySelector('#ak-id')`)
		p.checkLabels("sign in")
		p.screenshot("signin", false)
		p.do("type a wrong secret", chromedp.SendKeys("#ak-id", adminID), chromedp.SendKeys("#ak-secret", "not-the-secret\n"))
		p.wait("sign-in error", `document.querySelector('#signin-msg [role=alert]')?.innerText.includes('access key id or secret is wrong')`)
		p.setField("#ak-secret", adminSecret)
		p.do("submit", chromedp.Click("form.signin button[type=submit]"))
		p.wait("projects page", `document.body.dataset.page === 'projects' && document.querySelector('main').innerText.includes('No projects yet')`)
		require.Contains(t, p.text("#who"), adminID)
		// The secret is nowhere the page's script can read.
		leaked := evalJS[bool](p, fmt.Sprintf(`document.cookie.includes(%[1]q) || JSON.stringify(localStorage).includes(%[1]q) || JSON.stringify(sessionStorage).includes(%[1]q) || location.href.includes(%[1]q)`, adminSecret))
		require.False(t, leaked)
		require.Empty(t, evalJS[string](p, `document.cookie`), "the session cookie is HttpOnly")
	})

	t.Run("create project and logstore", func(t *testing.T) {
		p.tb = t
		p.checkLabels("projects")
		p.setField("#np-name", "web")
		p.do("create project", chromedp.Click("form.card button[type=submit]"))
		p.wait("project page", `location.hash === '#/p/web' && document.querySelector('main').innerText.includes('No logstores yet')`)
		p.setField("#nl-name", "access")
		p.do("create logstore", chromedp.Click("#create-logstore button[type=submit]"))
		p.wait("empty search page", `document.body.dataset.page === 'search' && document.querySelector('main').innerText.includes('No logs in this time range')`)
		p.checkLabels("search")
	})

	t.Run("index editor", func(t *testing.T) {
		p.tb = t
		p.goTo("/p/web/logstores/access/index")
		p.wait("index form", `!!document.querySelector('#index-form') && document.querySelector('#ix-line').checked`)
		for _, k := range []struct{ name, typ string }{{"status", "long"}, {"method", "text"}, {"path", "text"}, {"latency", "long"}} {
			p.do("add key", chromedp.Click("#ix-add"))
			p.setField("#index-form tbody tr:last-child .k-name", k.name)
			p.setField("#index-form tbody tr:last-child .k-type", k.typ)
		}
		p.checkLabels("index editor")
		p.do("save index", chromedp.Click("#index-form button[type=submit]"))
		p.wait("index saved", `document.querySelector('#index-form .banner.ok')?.innerText.includes('Index saved')`)
		idx, err := e.SDK(adminID, adminSecret).GetIndex("web", "access")
		require.NoError(t, err)
		require.Equal(t, "long", idx.Keys["status"].Type)
		require.True(t, idx.Keys["status"].DocValue)
		require.Equal(t, "text", idx.Keys["path"].Type)
		require.NotNil(t, idx.Line, "the full-text index made with the logstore is kept")
	})

	e.ingest("web", "access", logs)

	t.Run("search", func(t *testing.T) {
		p.tb = t
		p.goTo("/p/web/logstores/access?range=1h")
		p.wait("100 results", `document.querySelectorAll('ol.logs > li').length === 100 && document.querySelector('#summary').innerText.includes('240 logs match')`)
		// Newest first, and the newest is the last log written.
		times := evalJS[[]string](p, `[...document.querySelectorAll('ol.logs > li time')].map((t) => t.dateTime)`)
		require.Len(t, times, 100)
		for i := 1; i < len(times); i++ {
			require.GreaterOrEqual(t, times[i-1], times[i], "results are newest first")
		}
		first, err := time.Parse(time.RFC3339, times[0])
		require.NoError(t, err)
		require.Equal(t, now.Unix(), first.Unix())
		// Histogram: every log counted once.
		total := evalJS[int](p, `[...document.querySelectorAll('#histogram g.bar')].reduce((a, g) => a + Number(g.dataset.count), 0)`)
		require.Equal(t, 240, total)
		require.Equal(t, 1, evalJS[int](p, `document.querySelectorAll('#histogram g.bar[tabindex="0"]').length`), "the histogram is one tab stop")
		// Tags and fields are shown.
		row := p.text("ol.logs > li:first-child")
		require.Contains(t, row, "__path__: /var/log/nginx/access.log")
		require.Contains(t, row, "source: 10.0.0.5")
		require.Contains(t, row, logs[0].path)
		// Raw view.
		p.do("expand raw", chromedp.Click("ol.logs > li:first-child button.expand"))
		p.wait("raw JSON", `document.querySelector('ol.logs > li:first-child pre.raw')?.innerText.includes('"status": "500"')`)
		require.Equal(t, "true", evalJS[string](p, `document.querySelector('ol.logs > li:first-child button.expand').getAttribute('aria-expanded')`))
		p.screenshot("search", true)
		// Paging: the next 100.
		p.do("load more", chromedp.Evaluate[chromedp.Void](`document.querySelector('#more').scrollIntoView()`))
		p.wait("200 results", `document.querySelectorAll('ol.logs > li').length === 200`)
		times = evalJS[[]string](p, `[...document.querySelectorAll('ol.logs > li time')].map((t) => t.dateTime)`)
		last, err := time.Parse(time.RFC3339, times[199])
		require.NoError(t, err)
		require.Equal(t, logs[199].t.Unix(), last.Unix(), "the second page continues where the first ended")
	})

	t.Run("syntax error at its position", func(t *testing.T) {
		p.tb = t
		p.setField("#q", "status:500 and (")
		p.do("run", chromedp.Click("#run"))
		p.wait("syntax error", `document.querySelector('#q-err [role=alert]')?.innerText.includes('Syntax error at character 17')`)
		require.Equal(t, "true", evalJS[string](p, `document.querySelector('#q').getAttribute('aria-invalid')`))
		require.Equal(t, 16, evalJS[int](p, `document.querySelector('#q').selectionStart`), "the caret is put at the error")
		require.Equal(t, " ", p.text("#q-err mark"))
		p.screenshot("query-error", true)
	})

	t.Run("sidebar adds key:value", func(t *testing.T) {
		p.tb = t
		p.setField("#q", "")
		p.do("run", chromedp.Click("#run"))
		p.wait("results", `document.querySelectorAll('ol.logs > li').length === 100`)
		p.do("open status", chromedp.Click(`details.field[data-key="status"] summary`))
		p.do("click status 500", chromedp.Click(`button.fval[data-key="status"][data-value="500"]`))
		want := countStatus(logs, "500")
		p.wait("filtered", fmt.Sprintf(`document.querySelector('#q').value === 'status:500' && document.querySelector('#summary').innerText.includes('%d logs match')`, want))
		statuses := evalJS[[]string](p, `[...document.querySelectorAll('ol.logs > li dl.kv')].map((dl) => { const dts = [...dl.querySelectorAll('dt')]; const i = dts.findIndex((d) => d.textContent === 'status'); return dl.querySelectorAll('dd')[i].textContent; })`)
		require.Len(t, statuses, want)
		for _, s := range statuses {
			require.Equal(t, "500", s)
		}
		require.Contains(t, evalJS[string](p, `location.hash`), "q=status%3A500", "the query is in the URL to share")
	})

	t.Run("histogram zoom", func(t *testing.T) {
		p.tb = t
		bar := evalJS[map[string]string](p, `(() => { const g = [...document.querySelectorAll('#histogram g.bar')].filter((g) => g.dataset.count !== '0')[1]; return {from: g.dataset.from, to: g.dataset.to, count: g.dataset.count}; })()`)
		from, _ := strconv.ParseInt(bar["from"], 10, 64)
		to, _ := strconv.ParseInt(bar["to"], 10, 64)
		want := 0
		for _, l := range logs {
			if l.status == "500" && l.t.Unix() >= from && l.t.Unix() < to {
				want++
			}
		}
		require.Equal(t, strconv.Itoa(want), bar["count"], "the bar counts the 500s of its interval")
		p.do("click bar", chromedp.Click(fmt.Sprintf(`#histogram g.bar[data-from="%d"]`, from)))
		p.wait("zoomed", fmt.Sprintf(`location.hash.includes('from=%d') && location.hash.includes('to=%d') && document.querySelector('#summary').innerText.startsWith('%d logs match') && document.querySelectorAll('ol.logs > li').length === %d`, from, to, want, want))
		require.Equal(t, "custom", evalJS[string](p, `document.querySelector('#range').value`))
	})

	t.Run("SQL table and charts", func(t *testing.T) {
		p.tb = t
		q := "* | select status, count(*) as n group by status order by n desc"
		p.goTo("/p/web/logstores/access?range=1h&q=" + urlQuery(q))
		p.wait("SQL table", `document.querySelectorAll('#sql-table tbody tr').length === 3 && !!document.querySelector('#chart figure[data-kind=bar]')`)
		cells := evalJS[[]string](p, `[...document.querySelectorAll('#sql-table tbody tr:first-child td')].map((td) => td.textContent)`)
		require.Equal(t, []string{"200", strconv.Itoa(countStatus(logs, "200"))}, cells)
		require.Equal(t, 3, evalJS[int](p, `document.querySelectorAll('#chart svg rect.barfill').length`))
		p.screenshot("sql-bar", true)

		q = "* | select __time__ - __time__ % 60 as t, count(*) as n group by t order by t"
		p.goTo("/p/web/logstores/access?range=1h&q=" + urlQuery(q))
		p.wait("line chart", `!!document.querySelector('#chart figure[data-kind=line] path.series')`)
		sum := evalJS[int](p, `[...document.querySelectorAll('#sql-table tbody tr td:nth-child(2)')].reduce((a, td) => a + Number(td.textContent), 0)`)
		require.Equal(t, 240, sum)
		p.screenshot("sql-line", false)

		// A SQL error from the store is shown as the API reports it.
		p.goTo("/p/web/logstores/access?range=1h&q=" + urlQuery("* | select nosuchcolumn, count(*) as n group by nosuchcolumn"))
		p.wait("SQL error", `!!document.querySelector('#q-err [role=alert]')`)
	})

	t.Run("live tail", func(t *testing.T) {
		p.tb = t
		p.goTo("/p/web/logstores/access?range=15m&live=1")
		p.wait("live results", `document.querySelectorAll('ol.logs > li').length === 100 && document.querySelector('#live').checked`)
		e.ingest("web", "access", []accessLog{{t: time.Now(), method: "GET", path: "/live-marker", status: "200", latency: 1}})
		p.wait("tailed log", `[...document.querySelectorAll('ol.logs > li.fresh')].some((li) => li.innerText.includes('/live-marker'))`)
		require.Contains(t, p.text("ol.logs > li:first-child"), "/live-marker", "new logs go on top")
		p.do("live off", chromedp.Click("#live"))
	})

	agentDir := t.TempDir()
	t.Run("machine group without agents", func(t *testing.T) {
		p.tb = t
		p.goTo("/p/web/groups")
		p.wait("empty groups", `document.querySelector('main').innerText.includes('No machine groups yet')`)
		p.checkLabels("machine groups")
		p.setField("#mg-name", "web-nodes")
		p.setField("#mg-list", "10.1.2.3")
		p.do("create group", chromedp.Click("#group-form button[type=submit]"))
		p.wait("group page", `location.hash === '#/p/web/groups/web-nodes' && document.querySelector('main').innerText.includes('No agent has checked in yet')`)
		require.Contains(t, p.text("main"), "config_server_address")
	})

	t.Run("config editor", func(t *testing.T) {
		p.tb = t
		p.goTo("/p/web/configs")
		p.wait("empty configs", `document.querySelector('main').innerText.includes('No collection configs yet')`)
		p.do("new config", chromedp.Click("#new-config"))
		p.wait("editor", `!!document.querySelector('#cfg-json') && document.querySelector('#cfg-problems').innerText.includes('Valid config')`)
		cfg := map[string]any{"configName": "app-logs", "inputType": "file", "inputDetail": map[string]any{
			"logType": "common_reg_log", "logPath": filepath.Join(agentDir, "app"), "filePattern": "*.log",
			"regex": "(\\S+) (.*", "key": []string{"level", "message"}},
			"outputType": "LogService", "outputDetail": map[string]any{"projectName": "web", "logstoreName": "access"}}
		raw, _ := json.MarshalIndent(cfg, "", "  ")
		p.setField("#cfg-json", string(raw))
		p.wait("validation error", `document.querySelector('#cfg-problems [role=alert]')?.innerText.includes('inputDetail.regex')`)
		require.Contains(t, p.text("#cfg-problems"), "closing )")
		require.Equal(t, "true", evalJS[string](p, `document.querySelector('#cfg-json').getAttribute('aria-invalid')`))
		p.do("jump to the key", chromedp.Click(`#cfg-problems button[data-path="inputDetail.regex"]`))
		require.Equal(t, strings.Index(string(raw), `"regex"`), evalJS[int](p, `document.querySelector('#cfg-json').selectionStart`))
		p.checkLabels("config editor")
		p.screenshot("config-error", true)
		// Saving anyway: the API refuses it with the same message.
		p.do("save invalid", chromedp.Click("#cfg-save"))
		p.wait("API refusal", `document.querySelector('#config-form .buttons')?.previousElementSibling?.innerText.includes('ParameterInvalid')`)

		fixed := strings.Replace(string(raw), `(\\S+) (.*"`, `(\\S+) (.*)"`, 1)
		p.setField("#cfg-json", fixed)
		p.wait("valid", `document.querySelector('#cfg-problems').innerText.includes('Valid config')`)
		p.do("save", chromedp.Click("#cfg-save"))
		p.wait("config page", `location.hash === '#/p/web/configs/app-logs' && !!document.querySelector('#cg-web-nodes')`)
		p.do("apply to group", chromedp.Click("#cg-web-nodes"))
		c := e.SDK(adminID, adminSecret)
		require.Eventually(t, func() bool {
			groups, err := c.GetAppliedMachineGroups("web", "app-logs")
			return err == nil && len(groups) == 1 && groups[0] == "web-nodes"
		}, 30*time.Second, 50*time.Millisecond)
	})

	t.Run("machine group with a real agent", func(t *testing.T) {
		p.tb = t
		// A second config the agent must refuse: /etc is outside its allowed roots.
		c := e.SDK(adminID, adminSecret)
		bad := &sls.LogConfig{Name: "etc-secrets", InputType: "file", OutputType: "LogService",
			InputDetail:  map[string]any{"logType": "common_reg_log", "logPath": "/etc", "filePattern": "shadow", "regex": "(.*)", "key": []string{"content"}},
			OutputDetail: sls.OutputDetail{ProjectName: "web", LogStoreName: "access"}}
		require.NoError(t, c.CreateConfig("web", bad))
		require.NoError(t, c.ApplyConfigToMachineGroup("web", "etc-secrets", "web-nodes"))

		// Heartbeats are driven by the test.
		a := agenttest.Start(t, agenttest.Options{Dir: agentDir, Endpoint: e.base,
			AccessKeyID: adminID, AccessKeySecret: adminSecret, AllowedRoots: []string{agentDir}, Version: "console-test",
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		a.Client.Heartbeat(context.Background()) // receives both configs
		require.Eventually(t, func() bool {
			a.Client.Heartbeat(context.Background()) // reports their states
			m, _, err := c.ListMachines("web", "web-nodes")
			if err != nil || len(m) != 1 {
				return false
			}
			return true
		}, 30*time.Second, 100*time.Millisecond)

		p.goTo("/p/web/groups/web-nodes")
		p.wait("agent row", `document.querySelector('#machines')?.innerText.includes('10.1.2.3') && document.querySelector('#machines').innerText.includes('console-test')`)
		p.wait("failed config with its message", `[...document.querySelectorAll('#machines li.st-failed')].some((li) => li.innerText.includes('etc-secrets') && li.querySelector('.st-msg')?.innerText.includes('/etc'))`)
		require.Contains(t, p.text("#machines"), "app-logs")
		require.Contains(t, p.text("#machines"), "web-host")
		p.screenshot("machine-group", true)
	})

	t.Run("phone width", func(t *testing.T) {
		p.tb = t
		p.do("phone viewport", chromedp.EmulateViewport(390, 844))
		p.goTo("/p/web/logstores/access?range=1h")
		p.wait("results", `document.querySelectorAll('ol.logs > li').length >= 100`)
		overflow := evalJS[int](p, `document.documentElement.scrollWidth - document.documentElement.clientWidth`)
		require.LessOrEqual(t, overflow, 0, "no sideways scrolling at phone width")
		p.screenshot("search-phone", true)
		p.goTo("/p/web/groups/web-nodes")
		p.wait("agents", `!!document.querySelector('#machines')`)
		overflow = evalJS[int](p, `document.documentElement.scrollWidth - document.documentElement.clientWidth`)
		require.LessOrEqual(t, overflow, 0, "tables scroll inside their box, not the page")
		p.do("desktop viewport", chromedp.EmulateViewport(1280, 860))
	})

	t.Run("keyboard", func(t *testing.T) {
		p.tb = t
		p.goTo("/p/web/logstores/access?range=1h")
		p.wait("results", `document.querySelectorAll('ol.logs > li').length === 100`)
		p.wait("focus on the page heading after navigation", `document.activeElement.tagName === 'H1'`)
		// Tab order: from the heading the next stops are the index and
		// settings links, then the query box.
		p.do("tab", chromedp.KeyEvent("\t"))
		require.Equal(t, "Edit index", evalJS[string](p, `document.activeElement.textContent`))
		p.do("tab", chromedp.KeyEvent("\t"))
		require.Equal(t, "Settings", evalJS[string](p, `document.activeElement.textContent`))
		p.do("tab", chromedp.KeyEvent("\t"))
		require.Equal(t, "q", evalJS[string](p, `document.activeElement.id`))
		// Focus the histogram and zoom with the keyboard alone.
		p.do("focus last bar", chromedp.Focus(`#histogram g.bar[tabindex="0"]`))
		lastBar := evalJS[string](p, `document.activeElement.dataset.from || ''`)
		p.do("arrow left", chromedp.KeyEvent(kb.ArrowLeft))
		focused := evalJS[string](p, `document.activeElement.dataset.from || ''`)
		require.NotEmpty(t, focused)
		require.NotEqual(t, lastBar, focused, "ArrowLeft moves to the bar before")
		p.do("enter", chromedp.KeyEvent("\r"))
		p.wait("zoomed by keyboard", fmt.Sprintf(`location.hash.includes('from=%s')`, focused))
	})

	t.Run("logstore without index", func(t *testing.T) {
		p.tb = t
		require.NoError(t, e.SDK(adminID, adminSecret).CreateLogStore("web", "raw", 7, 1, false, 64))
		p.goTo("/p/web/logstores/raw")
		p.wait("teaching empty state", `document.querySelector('main').innerText.includes('This logstore has no index yet') && !!document.querySelector('main a.button.primary')`)
		p.do("create the index", chromedp.Click("main a.button.primary"))
		p.wait("index editor", `location.hash === '#/p/web/logstores/raw/index' && document.querySelector('main').innerText.includes('has no index yet')`)
		p.do("create", chromedp.Click("#index-form button[type=submit]"))
		p.wait("created", `document.querySelector('#index-form .banner.ok')?.innerText.includes('Index saved')`)
		p.goTo("/p/web/logstores/raw")
		p.wait("searchable now", `document.querySelector('main').innerText.includes('No logs in this time range')`)
	})

	t.Run("read-only key", func(t *testing.T) {
		p.tb = t
		require.NoError(t, e.App.Meta().PutAccessKey(context.Background(), meta.AccessKey{ID: "reader", Secret: "reader-secret-0123456789",
			Projects: map[string]meta.Permission{"web": meta.PermRead}, CreateTime: time.Now()}))
		p.do("sign out", chromedp.Click("#who button"))
		p.wait("sign-in page", `!!document.querySelector('#ak-id')`)
		p.setField("#ak-id", "reader")
		p.setField("#ak-secret", "reader-secret-0123456789")
		p.do("sign in", chromedp.Click("form.signin button[type=submit]"))
		p.wait("projects", `document.body.dataset.page === 'projects' && document.querySelector('main').innerText.includes('read access')`)
		require.Zero(t, evalJS[int](p, `document.querySelectorAll('#np-name').length`), "no create-project form")
		p.goTo("/p/web")
		p.wait("logstores", `document.querySelector('main').innerText.includes('can read this project but not change it')`)
		require.Zero(t, evalJS[int](p, `document.querySelectorAll('#create-logstore').length`))
		p.goTo("/p/web/logstores/access?range=1h")
		p.wait("search works", `document.querySelectorAll('ol.logs > li').length === 100`)
		p.goTo("/p/web/logstores/access/index")
		p.wait("read-only index", `!!document.querySelector('#ix-readonly') && document.querySelector('#index-form button[type=submit]').disabled`)
		p.goTo("/p/web/configs/app-logs")
		p.wait("read-only config", `document.querySelector('#cfg-json')?.readOnly && document.querySelector('#cfg-save').disabled && document.querySelector('#cg-web-nodes').disabled`)
	})

	t.Run("sign out", func(t *testing.T) {
		p.tb = t
		p.do("sign out", chromedp.Click("#who button"))
		p.wait("sign-in page", `location.hash === '#/signin' && !!document.querySelector('#ak-id')`)
		st := evalJS[int](p, `(async () => (await fetch('/console/api/sls/_/')).status)()`, chromedp.EvalAwaitPromise)
		require.Equal(t, 401, st, "the session is over server-side")
	})
}

func urlQuery(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(jsURLEncode(s), "%20", "+"), "#", "%23"), "&", "%26")
}

func jsURLEncode(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("-_.~*()", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
