package scaleout

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	sdk "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/e2e/e2etest"
	"github.com/sluicelog/sluice/mocklog"
)

// TestAgentsKillOneOfThree: real sluice-agents tail files of numbered
// lines (mocklog, json) into three servers on one object store and one
// PostgreSQL; one server is SIGKILLed under load and restarted a few
// seconds later on its address. Every line written must then be queryable
// from each of the three nodes, and every node must return the same lines.
//
// How the agents reach the servers, as deployed:
//   - "lb0" and "lb1" send to one endpoint, a load balancer in front of the
//     three servers (in Kubernetes: a Service behind an L7 proxy — an
//     Ingress or a mesh — that balances each request over the ready
//     replicas; readiness is /healthz, probed every 250 ms). Each agent's
//     requests go to all three nodes. When the victim dies, its in-flight
//     requests fail (502 from the balancer) and the agent's retries land on
//     the two survivors. Plain kube-proxy balances per connection instead:
//     an agent's keep-alive connection then sticks to one replica, and the
//     failover path (a broken connection, a retry that dials again) is
//     the same.
//   - "pinned" sends straight to the victim's address (one endpoint, no
//     balancer): its lines wait in its memory queue and disk buffer until
//     the node is back.
//
// A request the victim committed but could not answer is sent again (and
// the balancer loses every 5th answer of a commit, so re-sends happen in
// every run); the servers recognise the group by its __pack_id__ and
// content and do not store it twice, so every line must be on every node
// exactly once.
func TestAgentsKillOneOfThree(t *testing.T) {
	seed := e2etest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	c := newCluster(t)
	for i := range 3 {
		c.start("node" + strconv.Itoa(i))
	}
	a := c.nodes[0].client
	_, err := a.CreateProject(project, "scale-out e2e with agents")
	require.NoError(t, err)
	require.NoError(t, a.CreateLogStore(project, logstore, 7, 2, false, 64))
	require.NoError(t, a.CreateIndex(project, logstore, sdk.Index{
		Keys: map[string]sdk.IndexKey{"seq": {Type: "long", DocValue: true}},
		Line: &sdk.IndexLine{Token: []string{" ", ",", "\"", ":"}},
	}))

	lb := startBalancer(t, c.nodes)
	victim := c.nodes[rng.IntN(3)]
	t.Logf("victim %s", victim.name)
	const perAgent = 1_000_000 // agent i writes seq i*perAgent+1 …
	agents := []struct{ name, endpoint string }{
		{"lb0", "http://" + lb.addr}, {"lb1", "http://" + lb.addr}, {"pinned", "http://" + victim.listen},
	}
	procs := make([]*e2etest.Agent, len(agents))
	for i, ag := range agents {
		procs[i] = startAgent(t, c.dir, ag.name, ag.endpoint)
	}
	const rate = 1500 // lines/s per file
	gens := make([]*e2etest.Generator, len(agents))
	for i, ag := range agents {
		gens[i] = e2etest.StartGenerator(t, mocklog.Options{LogType: mocklog.LogTypeJSON,
			Path: filepath.Join(c.dir, ag.name, "logs", "app.log"), LogsPerSec: rate,
			FirstSeq: uint64(i*perAgent + 1), Seed: seed + uint64(i)})
	}

	// Kill at a random moment, once every node has taken balanced
	// requests and one is in flight at the victim (so that the failover
	// path is taken, not only the routing around a dead node).
	time.Sleep(time.Duration(2000+rng.IntN(2000)) * time.Millisecond)
	allServed := func() bool {
		served := lb.perNode()
		for _, n := range c.nodes {
			if served[n.listen] == 0 {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); (!allServed() || lb.inflight(victim.listen) == 0) && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	inflight := lb.inflight(victim.listen)
	before := lb.perNode()
	victim.proc.Signal(syscall.SIGKILL)
	require.Error(t, victim.proc.Wait(30*time.Second), "SIGKILLed")
	for _, n := range c.nodes {
		t.Logf("%s answered %d PutLogs through the balancer before the kill", n.name, before[n.listen])
		require.Positive(t, before[n.listen], "the balanced agents sent to %s before the kill", n.name)
	}
	t.Logf("killed %s (the pinned agent's endpoint) with %d balanced requests in flight at it", victim.name, inflight)
	time.Sleep(time.Duration(2000+rng.IntN(2000)) * time.Millisecond) // load goes on with two nodes
	c.restart(victim, victim.name+"-restarted.log")
	t.Logf("restarted %s", victim.name)
	time.Sleep(2 * time.Second) // and with three again
	last := make([]uint64, len(gens))
	var written uint64
	for i, g := range gens {
		last[i] = g.Stop()
		written += last[i] - uint64(i*perAgent)
	}
	t.Logf("%d lines written (%d/s per file)", written, rate)

	// Wait for the agents to deliver everything (or to stop making
	// progress: then the check below names what is missing).
	waitDelivered(t, c.nodes[0], last, perAgent, procs)
	for i, p := range procs {
		for _, what := range []string{"sluice_output_sls_dead_lettered_logs_total", "sluice_buffer_corrupt_bytes_total"} {
			v, err := p.Metric(what)
			require.NoError(t, err)
			require.Zero(t, v, "%s: %s", agents[i].name, what)
		}
		retries, err := p.Metric("sluice_output_sls_retries_total")
		require.NoError(t, err)
		t.Logf("%s: %.0f PutLogs retries", agents[i].name, retries)
		require.NoError(t, p.Stop(30*time.Second), "%s: %s", agents[i].name, p.LogTail())
	}

	lb.mu.Lock()
	resent, posts := lb.lost, lb.posts
	lb.mu.Unlock()
	t.Logf("%d of %d committed PutLogs answered 502 by the balancer (answers lost): their groups were sent again", resent, posts)
	require.Positive(t, resent, "the run must re-send committed groups")
	var first []int
	for _, n := range c.nodes {
		counts := make([]int, 0, written)
		lost, dups := 0, 0
		for i := range agents {
			lo := i*perAgent + 1
			cs := readRange(t, n.client, lo, int(last[i])+1)
			for j, k := range cs {
				if k == 0 {
					lost++
					if lost <= 10 {
						t.Errorf("%s: line %d (agent %s) lost", n.name, lo+j, agents[i].name)
					}
				}
				dups += max(k-1, 0)
			}
			counts = append(counts, cs...)
		}
		require.Zero(t, lost, "%s: lines lost (seed %d)", n.name, seed)
		require.Zero(t, dups, "%s: lines stored twice (seed %d)", n.name, seed)
		t.Logf("%s: all %d lines present once", n.name, written)
		if first == nil {
			first = counts
		} else {
			require.Equal(t, first, counts, "%s returns other lines than %s", n.name, c.nodes[0].name)
		}
	}
}

// startAgent runs sluice-agent with its own state under dir/name, tailing
// dir/name/logs/app.log* (json_log) into endpoint, with the default
// checkpoint and buffer settings.
func startAgent(t *testing.T, dir, name, endpoint string) *e2etest.Agent {
	t.Helper()
	home := filepath.Join(dir, name)
	for _, d := range []string{"configs", "state", "logs"} {
		require.NoError(t, os.MkdirAll(filepath.Join(home, d), 0o755))
	}
	inst, err := json.Marshal(map[string]any{
		"data_server_list":     []map[string]string{{"endpoint": endpoint}},
		"access_key_id":        adminID,
		"access_key_secret":    adminSecret,
		"check_point_filename": filepath.Join(home, "state", "checkpoint"),
		"buffer_file_path":     filepath.Join(home, "state", "buffer"),
	})
	require.NoError(t, err)
	instPath := filepath.Join(home, "instance.json")
	require.NoError(t, os.WriteFile(instPath, inst, 0o600))
	cfg, err := json.Marshal(map[string]any{
		"configName": "app",
		"inputType":  "file",
		"inputDetail": map[string]any{
			"logType": "json_log", "logPath": filepath.Join(home, "logs"), "filePattern": "app.log*", "tailExisted": true,
		},
		"outputType":   "LogService",
		"outputDetail": map[string]any{"projectName": project, "logstoreName": logstore},
	})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(home, "configs", "app.json"), cfg, 0o644))
	ag := e2etest.StartAgent(t, e2etest.AgentOptions{
		Bin: agentBin, ConfigDir: filepath.Join(home, "configs"), Output: "sls",
		LogPath: filepath.Join(dir, "agent-"+name+".log"), ShutdownTimeout: 20 * time.Second,
		Args: []string{"--instance-config", instPath, "--log-level", "info"},
	})
	ag.WaitHealthy(30 * time.Second)
	return ag
}

// waitDelivered waits until node holds every line each agent's file got
// (agent i: seq i*perAgent+1 … last[i]), and nothing more arrived for 3 s
// (late re-sends are counted as duplicates too) — or until nothing
// arrives for 60 s, leaving the missing lines to the caller's check.
func waitDelivered(t *testing.T, n *node, last []uint64, perAgent int, agents []*e2etest.Agent) {
	t.Helper()
	var want uint64
	for i, l := range last {
		want += l - uint64(i*perAgent)
	}
	from, to := time.Now().Add(-time.Hour).Unix(), time.Now().Add(time.Hour).Unix()
	var prev uint64
	changed := time.Now()
	for {
		var distinct, total uint64
		resp, err := n.client.GetLogs(project, logstore, "", from, to,
			"* | select count(distinct seq) as d, count(*) as n", 0, 0, false)
		if err == nil && len(resp.Logs) == 1 {
			distinct, _ = strconv.ParseUint(resp.Logs[0]["d"], 10, 64)
			total, _ = strconv.ParseUint(resp.Logs[0]["n"], 10, 64)
		}
		if total != prev {
			prev, changed = total, time.Now()
		}
		if distinct >= want && time.Since(changed) > 3*time.Second {
			return
		}
		if time.Since(changed) > 60*time.Second {
			for _, a := range agents {
				t.Logf("%s log:\n%s", a.Name, a.LogTail())
			}
			t.Logf("%s: %d of %d lines after nothing arrived for 60 s", n.name, distinct, want)
			return
		}
		time.Sleep(time.Second)
	}
}

// balancer is an HTTP load balancer in front of the servers: each request
// goes to the next ready server, round robin; a server is ready while its
// /healthz answers 200 (probed every 250 ms, as a readiness probe). A
// request to a server that fails meanwhile is answered 502, as an
// Ingress answers a POST it cannot forward. Every loseEvery-th PutLogs
// a server answered 200 is answered 502 instead: the answer lost after
// the commit, as when a node dies between the two, so that re-sends of
// committed groups happen in every run, not only when the kill falls in
// that window.
type balancer struct {
	addr      string
	nodes     []string
	ready     []atomic.Bool
	next      atomic.Uint64
	loseEvery int

	mu      sync.Mutex
	ok      map[string]int // requests answered 200, by node address
	pending map[string]int // requests sent on, not answered yet
	posts   int            // POSTs answered 200 by a server
	lost    int            // of which answered 502
}

var errAnswerLost = errors.New("answer lost after the commit (simulated)")

func startBalancer(t *testing.T, nodes []*node) *balancer {
	b := &balancer{ready: make([]atomic.Bool, len(nodes)), ok: map[string]int{}, pending: map[string]int{}, loseEvery: 5}
	for i, n := range nodes {
		b.nodes = append(b.nodes, n.listen)
		b.ready[i].Store(true)
	}
	transport := &http.Transport{DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext, MaxIdleConnsPerHost: 16}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			to := b.pick()
			r.SetURL(&url.URL{Scheme: "http", Host: to})
			r.Out.Host = r.In.Host // the project is the Host's first label
			b.mu.Lock()
			b.pending[to]++
			b.mu.Unlock()
		},
		ModifyResponse: func(resp *http.Response) error {
			b.mu.Lock()
			b.pending[resp.Request.URL.Host]--
			if resp.StatusCode == http.StatusOK {
				b.ok[resp.Request.URL.Host]++
				if resp.Request.Method == http.MethodPost {
					b.posts++
				}
				if resp.Request.Method == http.MethodPost && b.posts%b.loseEvery == 0 {
					b.lost++
					b.mu.Unlock()
					return errAnswerLost
				}
			}
			b.mu.Unlock()
			return nil
		},
		Transport: transport,
		ErrorHandler: func(w http.ResponseWriter, out *http.Request, err error) {
			if !errors.Is(err, errAnswerLost) {
				b.mu.Lock()
				b.pending[out.URL.Host]--
				b.mu.Unlock()
			}
			http.Error(w, "bad gateway: "+err.Error(), http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b.addr = ln.Addr().String()
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i, addr := range b.nodes {
				resp, err := probe.Get("http://" + addr + "/healthz")
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					resp.Body.Close()
				}
				b.ready[i].Store(ok)
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
		_ = srv.Close()
		transport.CloseIdleConnections()
	})
	return b
}

// pick is the next ready server (any server when none is ready: the
// request then fails, as it would).
func (b *balancer) pick() string {
	for range b.nodes {
		i := int(b.next.Add(1) % uint64(len(b.nodes)))
		if b.ready[i].Load() {
			return b.nodes[i]
		}
	}
	return b.nodes[int(b.next.Add(1)%uint64(len(b.nodes)))]
}

// perNode is how many requests each server answered 200 so far, by
// address.
func (b *balancer) perNode() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.ok))
	for k, v := range b.ok {
		out[k] = v
	}
	return out
}

// inflight is how many requests the server at addr has not answered yet.
func (b *balancer) inflight(addr string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pending[addr]
}
