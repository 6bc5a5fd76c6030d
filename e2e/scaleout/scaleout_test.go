// Package scaleout proves several sluice-servers on one object store and
// one PostgreSQL with real processes: three servers (--meta postgres://
// --storage s3://) on a SeaweedFS bucket and a throw-away PostgreSQL, one
// of them SIGKILLed under load. TestKillOneOfThree: SDK writers send
// numbered lines to all three; every acknowledged line is read back from
// each remaining server exactly once. TestAgentsKillOneOfThree: real
// sluice-agents tail numbered lines, two through a load balancer in front
// of the three servers and one straight to the victim, which is restarted;
// every line written is read back from each server, none lost, duplicates
// (at-least-once re-sends) counted. TestConsumersOnTwoNodes: the Go SDK's
// consumer library on two servers, with a consumer restart and a server
// SIGKILLed.
//
// SLUICE_E2E_KEEP=1 keeps the working directory (server logs and data).
package scaleout

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
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
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelog/sluice/e2e/e2etest"
	"github.com/sluicelog/sluice/internal/pgtest"
	"github.com/sluicelog/sluice/internal/s3test"
)

var serverBin, agentBin string

type e2eMain struct{ m *testing.M }

func (e e2eMain) Run() int {
	return e2etest.Main(e.m, map[string]*string{"sluice-server": &serverBin, "sluice-agent": &agentBin},
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("github.com/sluicelog/sluice/internal/pgtest.Start.func1"),
		goleak.IgnoreAnyFunction("github.com/sluicelog/sluice/internal/s3test.Start.func1"))
}

func TestMain(m *testing.M) { os.Exit(pgtest.Wrap(s3test.Wrap(e2eMain{m})).Run()) }

const (
	adminID     = "admin"
	adminSecret = "admin-secret-0123456789"
	project     = "scale"
	logstore    = "lines"
)

// node is one sluice-server process.
type node struct {
	name   string
	listen string
	proc   *e2etest.Process
	client *sdk.Client
}

type cluster struct {
	t      *testing.T
	dir    string
	dsn    string
	bucket s3test.Bucket
	nodes  []*node
}

func newCluster(t *testing.T) *cluster {
	return &cluster{t: t, dir: e2etest.Dir(t), dsn: pgtest.DSN(t), bucket: s3test.NewBucket(t)}
}

func (c *cluster) start(name string) *node {
	n := &node{name: name, listen: e2etest.FreeAddr(c.t)}
	c.run(n, name+".log")
	c.nodes = append(c.nodes, n)
	return n
}

// restart starts a node again (after a kill) on its address and data
// directory.
func (c *cluster) restart(n *node, logName string) { c.run(n, logName) }

func (c *cluster) run(n *node, logName string) {
	t, name := c.t, n.name
	n.proc = e2etest.Start(t, filepath.Join(c.dir, logName), []string{serverBin, "serve",
		"--listen", n.listen, "--data-dir", filepath.Join(c.dir, name), "--base-domain", "127.0.0.1",
		"--admin-key-id", adminID, "--admin-key-secret", adminSecret, "--log-level", "warn",
		"--meta", c.dsn, "--storage", c.bucket.URL, "--s3-endpoint", c.bucket.Endpoint,
		"--s3-access-key-id", c.bucket.AccessKey, "--s3-secret-access-key", c.bucket.SecretKey, "--node", name})
	n.client = newClient(n.listen)
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + n.listen + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 60*time.Second, 100*time.Millisecond, "%s did not come up: %s", name, n.proc.LogTail())
}

func newClient(listen string) *sdk.Client {
	c := &sdk.Client{Endpoint: listen, AccessKeyID: adminID, AccessKeySecret: adminSecret}
	c.SetHTTPClient(httpClient(listen))
	return c
}

// httpClient sends every request to listen, whatever host (project
// subdomain) the SDK puts in the URL.
func httpClient(listen string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, listen)
		}}}
}

// request is one PutLogs of numbered lines.
type request struct {
	first, n int
	acked    bool
}

// TestKillOneOfThree: writers send numbered lines to all three servers;
// one server is SIGKILLed at a random moment under load; the writers go on
// with the other two. Afterwards each remaining server returns every
// acknowledged line exactly once, no line twice, and of each request that
// failed either all lines or none (a group commit is all or nothing).
func TestKillOneOfThree(t *testing.T) {
	c := newCluster(t)
	for i := range 3 {
		c.start("node" + strconv.Itoa(i))
	}
	a := c.nodes[0].client
	_, err := a.CreateProject(project, "scale-out e2e")
	require.NoError(t, err)
	require.NoError(t, a.CreateLogStore(project, logstore, 7, 2, false, 64))
	require.NoError(t, a.CreateIndex(project, logstore, sdk.Index{
		Keys: map[string]sdk.IndexKey{"seq": {Type: "long", DocValue: true}, "writer": {Type: "long", DocValue: true}},
		Line: &sdk.IndexLine{Token: []string{" ", ","}},
	}))

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	const (
		writers = 16
		perReq  = 200
	)
	var (
		dead    atomic.Int32 // index+1 of the killed node
		nextSeq atomic.Int64
		mu      sync.Mutex
		reqs    []*request
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		acked   atomic.Int64
		failed  atomic.Int64
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ni := (w + i) % 3
				if int(dead.Load()) == ni+1 {
					ni = (ni + 1) % 3
				}
				first := int(nextSeq.Add(perReq)) - perReq
				r := &request{first: first, n: perReq}
				g := &sdk.LogGroup{Topic: proto.String("e2e"), Source: proto.String("w" + strconv.Itoa(w))}
				now := uint32(time.Now().Unix())
				for s := first; s < first+perReq; s++ {
					g.Logs = append(g.Logs, &sdk.Log{Time: proto.Uint32(now), Contents: []*sdk.LogContent{
						{Key: proto.String("seq"), Value: proto.String(strconv.Itoa(s))},
						{Key: proto.String("writer"), Value: proto.String(strconv.Itoa(w))},
						{Key: proto.String("msg"), Value: proto.String(fmt.Sprintf("line %d from writer %d", s, w))}}})
				}
				err := c.nodes[ni].client.PutLogs(project, logstore, g)
				r.acked = err == nil
				if r.acked {
					acked.Add(perReq)
				} else {
					failed.Add(1)
				}
				mu.Lock()
				reqs = append(reqs, r)
				mu.Unlock()
			}
		}()
	}
	// Kill one node at a random moment once load is flowing.
	victim := rng.IntN(3)
	time.Sleep(time.Duration(2000+rng.IntN(3000)) * time.Millisecond)
	ackedAtKill := acked.Load()
	c.nodes[victim].proc.Signal(syscall.SIGKILL)
	dead.Store(int32(victim + 1))
	t.Logf("killed %s after %d acknowledged lines", c.nodes[victim].name, ackedAtKill)
	time.Sleep(3 * time.Second) // load goes on with two nodes
	close(stop)
	wg.Wait()
	require.Positive(t, ackedAtKill, "load was flowing when the node was killed")
	t.Logf("%d requests, %d lines acknowledged, %d requests failed", len(reqs), acked.Load(), failed.Load())

	total := int(nextSeq.Load())
	for i, n := range c.nodes {
		if i == victim {
			continue
		}
		counts := readRange(t, n.client, 0, total)
		committedUnacked := 0
		for _, r := range reqs {
			present := 0
			for s := r.first; s < r.first+r.n; s++ {
				require.LessOrEqual(t, counts[s], 1, "%s: line %d stored %d times", n.name, s, counts[s])
				present += counts[s]
			}
			if r.acked {
				require.Equal(t, r.n, present, "%s: acknowledged lines %d..%d: only %d present", n.name, r.first, r.first+r.n-1, present)
			} else {
				require.True(t, present == 0 || present == r.n, "%s: a failed request is half visible: %d of %d lines", n.name, present, r.n)
				if present > 0 {
					committedUnacked++
				}
			}
		}
		t.Logf("%s: every acknowledged line once; %d failed requests were stored whole (committed, the answer lost with the node), the rest not at all",
			n.name, committedUnacked)
	}
}

// readRange counts how often each seq in [lo, hi) is stored (counts[0] is
// lo's), paging through SQL by seq range.
func readRange(t *testing.T, c *sdk.Client, lo, hi int) []int {
	t.Helper()
	counts := make([]int, hi-lo)
	from, to := time.Now().Add(-time.Hour).Unix(), time.Now().Add(time.Hour).Unix()
	const page = 50_000
	for p := lo; p < hi; p += page {
		q := fmt.Sprintf("* | select seq, count(*) as n where seq >= %d and seq < %d group by seq limit 1000000", p, min(p+page, hi))
		var resp *sdk.GetLogsResponse
		var err error
		for range 5 {
			if resp, err = c.GetLogs(project, logstore, "", from, to, q, 0, 0, false); err == nil {
				break
			}
			time.Sleep(time.Second)
		}
		require.NoError(t, err)
		for _, row := range resp.Logs {
			s, err1 := strconv.Atoi(row["seq"])
			n, err2 := strconv.Atoi(row["n"])
			require.NoError(t, errors.Join(err1, err2))
			counts[s-lo] += n
		}
	}
	return counts
}
