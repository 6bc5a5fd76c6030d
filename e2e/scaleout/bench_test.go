package scaleout

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelog/sluice/internal/pgtest"
	"github.com/sluicelog/sluice/internal/s3test"
)

// TestBenchScaleout is the shared-storage ingestion benchmark behind
// docs/benchmarks.md (skipped unless SLUICE_BENCH_SCALEOUT=1): 1 and then
// 3 sluice-servers on one SeaweedFS and one PostgreSQL, writers spread
// over the servers sending nginx-like LogGroups for SLUICE_BENCH_SECONDS
// (default 20). Reports lines/s acknowledged, CPU-µs per line of the
// servers (and of PostgreSQL and SeaweedFS, apart), and the PutLogs
// latency p50/p99 as the client sees it (the ack latency).
func TestBenchScaleout(t *testing.T) {
	if os.Getenv("SLUICE_BENCH_SCALEOUT") != "1" {
		t.Skip("set SLUICE_BENCH_SCALEOUT=1 to run the shared-storage benchmark")
	}
	secs, _ := strconv.Atoi(os.Getenv("SLUICE_BENCH_SECONDS"))
	if secs <= 0 {
		secs = 20
	}
	writers, _ := strconv.Atoi(os.Getenv("SLUICE_BENCH_WRITERS"))
	if writers <= 0 {
		writers = 32
	}
	lines, _ := strconv.Atoi(os.Getenv("SLUICE_BENCH_LINES"))
	if lines <= 0 {
		lines = 256 // ~64 KiB LogGroups, as agents send under load
	}
	for _, nodes := range []int{1, 3} {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) {
			benchNodes(t, nodes, writers, lines, time.Duration(secs)*time.Second)
		})
	}
}

func benchNodes(t *testing.T, nodes, writers, perReq int, d time.Duration) {
	c := newCluster(t)
	for i := range nodes {
		c.start("node" + strconv.Itoa(i))
	}
	a := c.nodes[0].client
	_, err := a.CreateProject(project, "bench")
	require.NoError(t, err)
	require.NoError(t, a.CreateLogStore(project, logstore, 7, 2, false, 64))
	require.NoError(t, a.CreateIndex(project, logstore, sdk.Index{
		Keys: map[string]sdk.IndexKey{"status": {Type: "long", DocValue: true}, "method": {Type: "text", DocValue: true},
			"request_uri": {Type: "text", DocValue: true}, "body_bytes_sent": {Type: "long", DocValue: true}},
		Line: &sdk.IndexLine{Token: []string{" ", ",", "/", "\"", "?", "=", "&"}},
	}))
	var pids []int
	for _, n := range c.nodes {
		pids = append(pids, n.proc.Cmd.Process.Pid)
	}
	srv0 := cpuOf(pids...)
	pg0, s3_0 := groupCPU(pgtest.Get(t).Pid()), groupCPU(s3test.Get(t).Pid())
	var (
		acked   atomic.Int64
		errs    atomic.Int64
		mu      sync.Mutex
		lat     []time.Duration
		wg      sync.WaitGroup
		stopped atomic.Bool
	)
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := c.nodes[w%nodes].client
			var mine []time.Duration
			for i := 0; !stopped.Load(); i++ {
				g := nginxGroup(w, i, perReq)
				t0 := time.Now()
				if err := cl.PutLogs(project, logstore, g); err != nil {
					errs.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mine = append(mine, time.Since(t0))
				acked.Add(int64(perReq))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	time.Sleep(d)
	stopped.Store(true)
	wg.Wait()
	wall := time.Since(start)
	srv := cpuOf(pids...) - srv0
	pg, s3 := groupCPU(pgtest.Get(t).Pid())-pg0, groupCPU(s3test.Get(t).Pid())-s3_0
	slices.Sort(lat)
	n := acked.Load()
	require.Positive(t, n)
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	t.Logf("nodes=%d writers=%d lines/request=%d: %.0f lines/s acknowledged (%d lines, %d requests, %d errors, %.1fs); "+
		"servers %.2f CPU-µs/line; PostgreSQL %.2f, SeaweedFS %.2f CPU-µs/line; ack latency p50 %v p99 %v max %v",
		nodes, writers, perReq, float64(n)/wall.Seconds(), n, len(lat), errs.Load(), wall.Seconds(),
		float64(srv.Microseconds())/float64(n), float64(pg.Microseconds())/float64(n), float64(s3.Microseconds())/float64(n),
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
}

var methods = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
var statuses = []string{"200", "200", "200", "200", "304", "404", "500"}

func nginxGroup(w, i, n int) *sdk.LogGroup {
	// Tagged as the agent and the SDK producer tag theirs: the servers
	// record each group's pack key for re-sends.
	g := &sdk.LogGroup{Topic: proto.String("nginx"), Source: proto.String("10.0.0." + strconv.Itoa(w)),
		LogTags: []*sdk.LogTag{{Key: proto.String("__pack_id__"), Value: proto.String(fmt.Sprintf("BE0C%04X-%X", w, i))}}}
	now := uint32(time.Now().Unix())
	for j := range n {
		k := i*n + j
		g.Logs = append(g.Logs, &sdk.Log{Time: proto.Uint32(now), Contents: []*sdk.LogContent{
			{Key: proto.String("remote_addr"), Value: proto.String(fmt.Sprintf("10.%d.%d.%d", w, k%250, j%250))},
			{Key: proto.String("time_local"), Value: proto.String(time.Now().Format("02/Jan/2006:15:04:05 -0700"))},
			{Key: proto.String("method"), Value: proto.String(methods[k%len(methods)])},
			{Key: proto.String("request_uri"), Value: proto.String(fmt.Sprintf("/api/v1/items/%d?page=%d", k%5000, k%17))},
			{Key: proto.String("status"), Value: proto.String(statuses[k%len(statuses)])},
			{Key: proto.String("body_bytes_sent"), Value: proto.String(strconv.Itoa(200 + k%9000))},
			{Key: proto.String("http_referer"), Value: proto.String("https://example.com/page/" + strconv.Itoa(k%300))},
			{Key: proto.String("http_user_agent"), Value: proto.String("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36")},
			{Key: proto.String("request_time"), Value: proto.String(fmt.Sprintf("0.%03d", k%1000))},
			{Key: proto.String("seq"), Value: proto.String(strconv.Itoa(k))},
		}})
	}
	return g
}

// cpuOf sums utime+stime of the processes.
func cpuOf(pids ...int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		total += procCPU(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	}
	return total
}

// groupCPU sums utime+stime of every process in the process group (a
// PostgreSQL server is one process per connection).
func groupCPU(pgid int) time.Duration {
	ents, _ := os.ReadDir("/proc")
	var total time.Duration
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		f := statFields(filepath.Join("/proc", e.Name(), "stat"))
		if len(f) > 15 && f[4] == strconv.Itoa(pgid) {
			total += ticks(f[13]) + ticks(f[14])
		}
	}
	return total
}

func procCPU(path string) time.Duration {
	f := statFields(path)
	if len(f) < 15 {
		return 0
	}
	return ticks(f[13]) + ticks(f[14])
}

// statFields splits /proc/<pid>/stat (the command, in parentheses, may
// hold spaces).
func statFields(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return append([]string{"pid", "comm"}, strings.Fields(s[i+1:])...)
}

func ticks(s string) time.Duration {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Duration(n) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
