// Package abuse runs the real sluice-server binary, with its default
// settings, under the requests an attacker holding a read-only or a
// write-only key (or no key) can send, and checks that it stays bounded:
// a memory watchdog samples the server's RSS from /proc throughout and the
// peak must stay under maxRSS; each probe must get its documented error
// within a bounded time; and another tenant's simple queries, run all the
// while, must keep answering, never held until an abuser's query ends
// (victimLatency). Figures are logged and
// recorded in docs/benchmarks.md ("Bounded under abuse").
package abuse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/e2e/e2etest"
	"github.com/sluicelog/sluice/protocol"
)

var serverBin string

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, map[string]*string{"sluice-server": &serverBin},
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait")))
}

const (
	adminID      = "abuse-admin"
	adminSecret  = "abuse-admin-secret-0123456789"
	metricsToken = "abuse-metrics-token"
	logstore     = "logs"

	// maxRSS is the documented bound on the server's peak RSS while every
	// probe runs, with the default settings (DuckDB memory_limit 768 MB,
	// all its allocations held to 916 MiB; the Go heap, which keeps the
	// body probe's 256 MiB for a while, and jemalloc's pages come on top:
	// 1.18-1.28 GiB measured, docs/benchmarks.md).
	maxRSS = 1536 << 20
	// victimLatency bounds another tenant's simple query meanwhile: well
	// under the 1 m query timeout, so a victim that waited for an abuser's
	// query to end fails. Its usual latency is logged, not asserted: 0.1-0.6 s
	// at load 2-5, but 5.8 s at load 20 on the shared 2-core box, where the
	// box's load, not the server, sets it (a 2 s bound failed there).
	victimLatency = 30 * time.Second
)

// server is the running sluice-server and what the test knows of it.
type server struct {
	t      *testing.T
	addr   string
	proc   *e2etest.Process
	client *http.Client
}

// startServer starts sluice-server with its default settings, plus args.
func startServer(t *testing.T, args ...string) *server {
	dir := e2etest.Dir(t)
	addr := e2etest.FreeAddr(t)
	logPath := filepath.Join(dir, "server.log")
	p := e2etest.Start(t, logPath, append([]string{serverBin, "serve", "--listen", addr,
		"--data-dir", filepath.Join(dir, "data"), "--metrics-token", metricsToken, "--log-level", "info"}, args...),
		"SLUICE_ADMIN_KEY_ID="+adminID, "SLUICE_ADMIN_KEY_SECRET="+adminSecret)
	s := &server{t: t, addr: addr, proc: p, client: &http.Client{Timeout: 2 * time.Minute}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if !p.Running() || time.Now().After(deadline) {
			t.Fatalf("server not healthy (running=%v): %v\n%s", p.Running(), err, p.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reply is an answer of the server.
type reply struct {
	err     error // the request failed at the transport
	status  int
	code    string
	message string
	body    []byte
	took    time.Duration
}

// do sends a request signed with the key (none when id is "").
func (s *server) do(id, secret, method, project, path string, query url.Values, body []byte) reply {
	u := "http://" + s.addr + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	r, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return reply{err: err}
	}
	r.Header.Set(protocol.HeaderAPIVersion, protocol.APIVersion)
	r.Header.Set(protocol.HeaderBodyRawSize, strconv.Itoa(len(body)))
	if project != "" {
		r.Header.Set(protocol.HeaderProject, project)
	}
	if body != nil {
		if json.Valid(body) {
			r.Header.Set("Content-Type", "application/json")
		} else {
			r.Header.Set("Content-Type", protocol.ContentTypeProtobuf)
		}
	}
	if id != "" {
		signer := &protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: id, AccessKeySecret: secret}}
		if err := signer.SignRequest(r, body, time.Now()); err != nil {
			return reply{err: err}
		}
	}
	start := time.Now()
	resp, err := s.client.Do(r)
	if err != nil {
		return reply{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	rep := reply{err: err, status: resp.StatusCode, body: b, took: time.Since(start)}
	var e struct {
		Code    string `json:"errorCode"`
		Message string `json:"errorMessage"`
	}
	if resp.StatusCode >= 300 && json.Unmarshal(b, &e) == nil {
		rep.code, rep.message = e.Code, e.Message
	}
	return rep
}

func (s *server) admin(method, project, path string, query url.Values, body []byte) reply {
	return s.do(adminID, adminSecret, method, project, path, query, body)
}

func (s *server) mustOK(r reply) {
	s.t.Helper()
	require.NoError(s.t, r.err)
	require.Less(s.t, r.status, 300, "%d %s %s", r.status, r.code, r.message)
}

// getLogs runs GetLogs over the last hour as the key.
func (s *server) getLogs(id, secret, project, query string) reply {
	now := time.Now().Unix()
	return s.do(id, secret, http.MethodGet, project, "/logstores/"+logstore, url.Values{
		"type": {"log"}, "from": {strconv.FormatInt(now-3600, 10)}, "to": {strconv.FormatInt(now+60, 10)},
		"query": {query}, "line": {"100"},
	}, nil)
}

// provision creates project with logstore "logs", a line index and n logs.
func (s *server) provision(project string, n int) {
	s.t.Helper()
	s.mustOK(s.admin(http.MethodPost, project, "/", nil, []byte(`{"projectName":"`+project+`","description":"abuse"}`)))
	s.mustOK(s.admin(http.MethodPost, project, "/logstores", nil, []byte(`{"logstoreName":"`+logstore+`","ttl":7,"shardCount":2}`)))
	s.mustOK(s.admin(http.MethodPost, project, "/logstores/"+logstore+"/index", nil,
		[]byte(`{"line":{"token":[" ",",","=","/",":"]},"keys":{"level":{"type":"text","token":[" "]},"n":{"type":"long"},"msg":{"type":"text","token":[" "]}}}`)))
	now := uint32(time.Now().Unix())
	for done := 0; done < n; {
		g := protocol.LogGroup{Source: "10.0.0.1"}
		for i := 0; i < 1000 && done < n; i++ {
			g.Logs = append(g.Logs, protocol.Log{Time: now, Contents: []protocol.LogContent{
				{Key: "level", Value: []string{"info", "warn", "error"}[done%3]},
				{Key: "n", Value: strconv.Itoa(done)},
				{Key: "msg", Value: "request served from upstream " + strconv.Itoa(done%97)},
			}})
			done++
		}
		s.mustOK(s.admin(http.MethodPost, project, "/logstores/"+logstore+"/shards/lb", nil, protocol.AppendLogGroup(nil, &g)))
	}
}

// createKey makes a key with perm ("read" or "write") on project.
func (s *server) createKey(id, project, perm string) string {
	s.t.Helper()
	secret := id + "-secret-0123456789"
	s.mustOK(s.admin(http.MethodPost, "", "/_sluice/accesskeys", nil,
		[]byte(fmt.Sprintf(`{"accessKeyId":%q,"accessKeySecret":%q,"projects":{%q:%q}}`, id, secret, project, perm))))
	return secret
}

// rssWatch samples a process's resident set size every 50 ms.
type rssWatch struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func watchRSS(t *testing.T, pid int) *rssWatch {
	w := &rssWatch{stop: make(chan struct{}), done: make(chan struct{})}
	path := fmt.Sprintf("/proc/%d/status", pid)
	go func() {
		defer close(w.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, err := readRSS(path); err == nil && rss > w.peak.Load() {
				w.peak.Store(rss)
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(w.Stop)
	return w
}

func (w *rssWatch) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func readRSS(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS", path)
}

// victim runs another tenant's simple query every 200 ms and records the
// slowest answer and any failure. A 503 ServerBusy is retried after its
// Retry-After, as the SDKs do, and counted (busy); only a query that
// never gets through in 30 attempts is a failure.
type victim struct {
	mu      sync.Mutex
	slowest time.Duration
	n, busy int
	failed  []string
	stop    chan struct{}
	done    chan struct{}
}

func startVictim(s *server, id, secret, project string) *victim {
	v := &victim{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(v.done)
		for {
			r := s.getLogs(id, secret, project, "level: error | select count(*) as n")
			for attempt := 1; r.err == nil && r.status == http.StatusServiceUnavailable && attempt < 30; attempt++ {
				v.mu.Lock()
				v.busy++
				v.mu.Unlock()
				time.Sleep(time.Second) // Retry-After: 1
				r = s.getLogs(id, secret, project, "level: error | select count(*) as n")
			}
			v.mu.Lock()
			v.n++
			if r.took > v.slowest {
				v.slowest = r.took
			}
			if r.err != nil {
				v.failed = append(v.failed, r.err.Error())
			} else if r.status != http.StatusOK {
				v.failed = append(v.failed, fmt.Sprintf("%d %s %s", r.status, r.code, r.message))
			}
			v.mu.Unlock()
			select {
			case <-v.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return v
}

func (v *victim) Stop() {
	close(v.stop)
	<-v.done
}

func TestAbuse(t *testing.T) {
	s := startServer(t)
	watch := watchRSS(t, s.proc.Cmd.Process.Pid)
	s.provision("victim", 20000)
	s.provision("attacker", 20000)
	readSecret := s.createKey("attacker-read", "attacker", "read")
	writeSecret := s.createKey("attacker-write", "attacker", "write")
	victimSecret := s.createKey("victim-read", "victim", "read")
	baseRSS := watch.peak.Load()
	t.Logf("server RSS after provisioning: %d MiB", baseRSS>>20)

	v := startVictim(s, "victim-read", victimSecret, "victim")
	read := func(query string) reply { return s.getLogs("attacker-read", readSecret, "attacker", query) }
	// A query that goes over a limit answers 400 naming it, or 503 with a
	// retry hint under load; never 500, and never the store's own SQL.
	requireRefused := func(t *testing.T, r reply, within time.Duration) {
		t.Helper()
		require.NoError(t, r.err)
		require.Contains(t, []int{http.StatusBadRequest, http.StatusServiceUnavailable}, r.status, "%s %s", r.code, r.message)
		require.NotEmpty(t, r.message)
		require.LessOrEqual(t, r.took, within, "answered after %s", r.took)
		for _, internal := range []string{"read_parquet", ".parquet", "LINE 1", "FROM \"log\""} {
			require.NotContains(t, r.message, internal, "internal SQL in the answer")
		}
		t.Logf("%d %s after %s: %.200s", r.status, r.code, r.took.Round(time.Millisecond), r.message)
	}

	t.Run("1500 CTEs", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("* | with c0 as (select 1 as x from log)")
		for i := 1; i < 1500; i++ {
			fmt.Fprintf(&b, ", c%d as (select x from c%d)", i, i-1)
		}
		b.WriteString(" select count(*) from c1499")
		r := read(b.String())
		requireRefused(t, r, 5*time.Second)
		require.Equal(t, "QueryLimitExceeded", r.code)
	})

	t.Run("long query text", func(t *testing.T) {
		// 60 KB fits a request line; past the 32 KiB query limit.
		r := read("* | select count(*) from log where msg <> '" + strings.Repeat("x", 60000) + "'")
		requireRefused(t, r, 5*time.Second)
		require.Equal(t, "QueryLimitExceeded", r.code)
		// 1 MB does not even fit the request header (64 KiB): the HTTP
		// server answers 431 and closes, often before the client has sent
		// it all (a reset then).
		r = read("* | select '" + strings.Repeat("x", 1<<20) + "'")
		if r.err == nil {
			require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, r.status)
		}
		// Under the text limit, the CTE count is checked before planning.
		var b strings.Builder
		b.WriteString("* | with c0 as (select 1 as x from log)")
		for i := 1; i < 20; i++ {
			fmt.Fprintf(&b, ", c%d as (select x from c%d)", i, i-1)
		}
		b.WriteString(" select count(*) from c19")
		r = read(b.String())
		requireRefused(t, r, 5*time.Second)
		require.Equal(t, "QueryLimitExceeded", r.code)
		require.Contains(t, r.message, "CTE")
	})

	t.Run("value caps through a CTE, four at once", func(t *testing.T) {
		queries := []string{
			"* | with a as (select repeat('x', 1048576) s) select length(repeat(s, 1024)) from a",
			"* | with a as (select repeat('x', 16000) s) select length(repeat(s, 100000)) from a",
			"* | with a as (select msg s from log limit 1) select length(repeat(s, 100000000)) from a",
			"* | with a as (select repeat(msg, 500) s from log) select length(repeat(s, 1000)) from a",
		}
		var wg sync.WaitGroup
		replies := make([]reply, len(queries))
		for i, q := range queries {
			wg.Add(1)
			go func() { defer wg.Done(); replies[i] = read(q) }()
		}
		wg.Wait()
		for _, r := range replies {
			requireRefused(t, r, 10*time.Second)
		}
	})

	t.Run("logs on 20000 future days", func(t *testing.T) {
		g := protocol.LogGroup{}
		now := time.Now()
		for i := 0; i < 20000; i++ {
			g.Logs = append(g.Logs, protocol.Log{Time: uint32(now.Add(time.Duration(i+1) * 24 * time.Hour).Unix()),
				Contents: []protocol.LogContent{{Key: "k", Value: "v"}}})
		}
		r := s.do("attacker-write", writeSecret, http.MethodPost, "attacker", "/logstores/"+logstore+"/shards/lb", nil, protocol.AppendLogGroup(nil, &g))
		require.Equal(t, http.StatusBadRequest, r.status, r.message)
		require.Equal(t, "InvalidTimestamp", r.code)
		require.Less(t, r.took, 5*time.Second)
		// Past days within the ttl, each one apart: at most --max-write-days.
		g.Logs = g.Logs[:0]
		for i := 0; i < 7; i++ {
			g.Logs = append(g.Logs, protocol.Log{Time: uint32(now.Add(-time.Duration(i) * 24 * time.Hour).Unix()),
				Contents: []protocol.LogContent{{Key: "k", Value: "v"}}})
		}
		r = s.do("attacker-write", writeSecret, http.MethodPost, "attacker", "/logstores/"+logstore+"/shards/lb", nil, protocol.AppendLogGroup(nil, &g))
		require.Equal(t, http.StatusOK, r.status, r.message)
	})

	t.Run("100 unauthenticated 11 MiB bodies", func(t *testing.T) {
		const conns = 100
		var wg sync.WaitGroup
		statuses := make([]string, conns)
		start := time.Now()
		for i := 0; i < conns; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = slowUnauthenticated(s.addr, 11<<20)
			}()
		}
		wg.Wait()
		took := time.Since(start)
		for i, st := range statuses {
			require.True(t, strings.HasPrefix(st, "HTTP/1.1 401") || strings.HasPrefix(st, "closed"), "connection %d: %s", i, st)
		}
		require.Less(t, took, 20*time.Second)
		t.Logf("%d connections answered within %s", conns, took.Round(time.Millisecond))
	})

	t.Run("100 signed 11 MiB bodies sent slowly", func(t *testing.T) {
		// With a valid write key the body is read, but only as many bodies
		// as fit the server-wide budget (256 MiB) are held at once; the
		// others wait 5 s for room and get 503 ServerBusy, unread. What
		// matters is asserted from the server's side: the bytes it holds
		// (its budget gauge and its RSS) and that the other tenant is
		// served meanwhile. The client cannot tell a body being read from a
		// request the server has not reached yet (on a loaded box some 503s
		// come after the client's wait: 26 "held" were once counted).
		const conns, size, budget = 100, 11 << 20, 256 << 20
		body := make([]byte, size)
		signer := &protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: "attacker-write", AccessKeySecret: writeSecret}}
		rssPath := fmt.Sprintf("/proc/%d/status", s.proc.Cmd.Process.Pid)
		before, err := readRSS(rssPath)
		require.NoError(t, err)
		refusedBefore := metricValue(metricsText(t, s), "sluice_api_body_budget_refused_total")
		start := time.Now()
		results := make([]string, conns)
		var wg sync.WaitGroup
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = slowSigned(s.addr, signer, body)
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		var peakRSS int64
		var maxHeld float64
		victimServed := false
		for waiting := true; waiting; {
			select {
			case <-done:
				waiting = false
			case <-time.After(250 * time.Millisecond):
			}
			if rss, err := readRSS(rssPath); err == nil {
				peakRSS = max(peakRSS, rss)
			}
			maxHeld = max(maxHeld, metricValue(metricsText(t, s), "sluice_api_body_budget_bytes"))
			if !victimServed && time.Since(start) > 3*time.Second {
				r := s.getLogs("victim-read", victimSecret, "victim", "level: error | select count(*) as n")
				require.NoError(t, r.err)
				require.Equal(t, http.StatusOK, r.status, "the other tenant's query while the bodies are held: %s %s", r.code, r.message)
				victimServed = true
			}
		}
		took := time.Since(start)
		busy, unanswered := 0, 0
		for i, st := range results {
			switch {
			case strings.HasPrefix(st, "HTTP/1.1 503"):
				busy++
			case strings.HasPrefix(st, "no answer"):
				unanswered++ // being read (the server waits for the last byte), or not reached yet
			default:
				t.Fatalf("connection %d: %s", i, st)
			}
		}
		refused := metricValue(metricsText(t, s), "sluice_api_body_budget_refused_total") - refusedBefore
		t.Logf("%d connections within %s: %d answered 503 ServerBusy, %d unanswered; the server held at most %.0f bodies (%.0f MiB), refused %.0f; RSS %d -> %d MiB",
			conns, took.Round(time.Millisecond), busy, unanswered, maxHeld/size, maxHeld/(1<<20), refused, before>>20, peakRSS>>20)
		require.True(t, victimServed)
		require.LessOrEqual(t, maxHeld, float64(budget), "the server held more body bytes than its budget")
		require.Positive(t, busy, "no body was refused: the budget did not hold")
		// Bodies outside the budget would show here: all 100 held are 1.1 GiB.
		// The slack is for reading buffers and the Go heap's growth.
		require.Less(t, peakRSS-before, int64(budget+256<<20), "server RSS grew past the body budget")
	})

	t.Run("unsigned web tracking on 4096 days", func(t *testing.T) {
		// Web tracking is unsigned by design; a logstore that enables it
		// (here one kept forever: no past bound) must not let anyone make a
		// segment per day either.
		s.mustOK(s.do("attacker-write", writeSecret, http.MethodPost, "attacker", "/logstores", nil,
			[]byte(`{"logstoreName":"open","ttl":3650,"shardCount":1,"enable_tracking":true}`)))
		var b strings.Builder
		b.WriteString(`{"__logs__":[`)
		now := time.Now()
		for i := 0; i < 4096; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"__time__":"%d","k":"v"}`, now.Add(-time.Duration(i)*24*time.Hour).Unix())
		}
		b.WriteString(`]}`)
		r := s.do("", "", http.MethodPost, "attacker", "/logstores/open/track", nil, []byte(b.String()))
		require.Equal(t, http.StatusBadRequest, r.status, r.message)
		require.Equal(t, "InvalidTimestamp", r.code)
		require.Less(t, r.took, 5*time.Second)
		t.Logf("%d %s after %s", r.status, r.code, r.took.Round(time.Millisecond))
	})

	t.Run("logstore quota", func(t *testing.T) {
		// A write key creating logstores stops at the quota (200 per
		// project by default) with an error naming it.
		start := time.Now()
		var r reply
		created := 0
		for i := 0; i < 300; i++ {
			r = s.do("attacker-write", writeSecret, http.MethodPost, "attacker", "/logstores", nil,
				[]byte(fmt.Sprintf(`{"logstoreName":"flood-%d","ttl":1,"shardCount":1}`, i)))
			if r.status != http.StatusOK {
				break
			}
			created++
		}
		require.Equal(t, http.StatusBadRequest, r.status, r.message)
		require.Equal(t, "LogStoreQuotaExceed", r.code)
		require.Contains(t, r.message, "--max-logstores-per-project")
		require.Equal(t, 200-2, created, "logs and open existed")
		t.Logf("%d logstores created in %s, then %d %s: %s", created, time.Since(start).Round(time.Millisecond), r.status, r.code, r.message)
	})

	// Last of the heavy probes: DuckDB's allocator keeps pages after the
	// query, and the body probe above measures its own RSS growth.
	t.Run("memory-hungry queries", func(t *testing.T) {
		// 20k x 20k rows with a wide distinct: far past the memory limit
		// unless stopped. Two at once.
		q := "* | select count(distinct concat(a.msg, b.msg, a.n, b.n, a.level)) from log a, log b"
		var wg sync.WaitGroup
		replies := make([]reply, 2)
		for i := range replies {
			wg.Add(1)
			go func() { defer wg.Done(); replies[i] = read(q) }()
		}
		wg.Wait()
		limited := 0
		for _, r := range replies {
			// The default query timeout is 1 minute; the memory limit
			// usually stops it sooner. An out-of-memory beside the victim's
			// queries runs again without them (the 400 then names the
			// limit); a 503 when it could not do so in time.
			requireRefused(t, r, 75*time.Second)
			if r.status == http.StatusBadRequest {
				limited++
			}
		}
		require.Positive(t, limited, "neither memory-hungry query got the 400 naming its limit")
	})

	t.Run("key ids cannot be enumerated", func(t *testing.T) {
		unknown := s.do("no-such-key", "whatever-secret-0123", http.MethodGet, "attacker", "/logstores", nil, nil)
		wrong := s.do("attacker-read", "wrong-secret-0123456", http.MethodGet, "attacker", "/logstores", nil, nil)
		require.Equal(t, http.StatusUnauthorized, unknown.status)
		require.Equal(t, unknown.status, wrong.status)
		require.Equal(t, unknown.code, wrong.code)
	})

	t.Run("metrics need the token", func(t *testing.T) {
		resp, err := http.Get("http://" + s.addr + "/metrics")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+metricsToken)
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("keys stay in their project and permission", func(t *testing.T) {
		r := read("* | select 1")
		require.Equal(t, http.StatusOK, r.status, r.message)
		g := protocol.LogGroup{Logs: []protocol.Log{{Time: uint32(time.Now().Unix()), Contents: []protocol.LogContent{{Key: "k", Value: "v"}}}}}
		r = s.do("attacker-read", readSecret, http.MethodPost, "attacker", "/logstores/"+logstore+"/shards/lb", nil, protocol.AppendLogGroup(nil, &g))
		require.Equal(t, http.StatusUnauthorized, r.status, "a read key wrote")
		for _, k := range [][2]string{{"attacker-read", readSecret}, {"attacker-write", writeSecret}} {
			r = s.getLogs(k[0], k[1], "victim", "*")
			require.Equal(t, http.StatusUnauthorized, r.status, "%s read another project", k[0])
		}
	})

	v.Stop()
	watch.Stop()
	peak := watch.peak.Load()
	m := metricsText(t, s)
	t.Logf("peak RSS %d MiB (bound %d MiB; DuckDB's allocations peaked at %.0f MiB of %.0f); victim: %d queries, %d retries after 503, slowest answer %s",
		peak>>20, maxRSS>>20, metricValue(m, "sluice_store_duckdb_memory_peak_bytes")/(1<<20), metricValue(m, "sluice_store_duckdb_memory_limit_bytes")/(1<<20),
		v.n, v.busy, v.slowest.Round(time.Millisecond))
	require.Less(t, peak, int64(maxRSS), "server RSS went past the bound")
	require.Empty(t, v.failed, "the other tenant's queries failed")
	require.Less(t, v.slowest, victimLatency, "the other tenant waited")
	require.True(t, s.proc.Running(), "server died:\n%s", s.proc.LogTail())
	r := s.getLogs("victim-read", victimSecret, "victim", "* | select count(*) as n")
	require.Equal(t, http.StatusOK, r.status, r.message)
}

// slowUnauthenticated opens a connection, sends a PutLogs header declaring
// size bytes without credentials, then all but one byte of the body, and
// returns the status line of the answer ("closed: ..." when the server
// closed the connection instead).
func slowUnauthenticated(addr string, size int) string {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "closed: " + err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "POST /logstores/logs/shards/lb HTTP/1.1\r\nHost: %s\r\nx-log-project: attacker\r\nx-log-apiversion: 0.6.0\r\nx-log-bodyrawsize: %d\r\nContent-Type: application/x-protobuf\r\nContent-Length: %d\r\n\r\n", addr, size, size)
	go func() {
		chunk := make([]byte, 64<<10)
		for sent := 0; sent < size-1; {
			n := min(len(chunk), size-1-sent)
			if _, err := c.Write(chunk[:n]); err != nil {
				return
			}
			sent += n
		}
	}()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "closed: " + err.Error()
	}
	return strings.TrimSpace(line)
}

// slowSigned sends a PutLogs of body signed by signer, all but its last
// byte, and returns the status line of the answer, or "no answer" when
// none came within 25 s (the server is reading the body, or has not got
// to the request yet).
func slowSigned(addr string, signer *protocol.Signer, body []byte) string {
	r, err := http.NewRequest(http.MethodPost, "http://"+addr+"/logstores/"+logstore+"/shards/lb", nil)
	if err != nil {
		return err.Error()
	}
	r.Header.Set(protocol.HeaderAPIVersion, protocol.APIVersion)
	r.Header.Set(protocol.HeaderBodyRawSize, strconv.Itoa(len(body)))
	r.Header.Set(protocol.HeaderProject, "attacker")
	r.Header.Set("Content-Type", protocol.ContentTypeProtobuf)
	if err := signer.SignRequest(r, body, time.Now()); err != nil {
		return err.Error()
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "closed: " + err.Error()
	}
	defer c.Close()
	// Past the 5 s budget wait with a wide margin: on a loaded machine a
	// 503 can come well after 5 s, and counting it as held failed the test.
	_ = c.SetDeadline(time.Now().Add(25 * time.Second))
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", r.URL.Path, addr, len(body))
	for k, vs := range r.Header {
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(c, head.String()); err != nil {
		return "closed: " + err.Error()
	}
	go func() {
		for sent := 0; sent < len(body)-1; {
			n := min(64<<10, len(body)-1-sent)
			if _, err := c.Write(body[sent : sent+n]); err != nil {
				return
			}
			sent += n
		}
	}()
	line, err := bufio.NewReader(c).ReadString('\n')
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return "no answer"
	}
	if err != nil {
		return "closed: " + err.Error()
	}
	return strings.TrimSpace(line)
}

// metricValue is the value of the sample name (without labels) in a
// /metrics text; 0 when absent.
func metricValue(text, name string) float64 {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return 0
}
