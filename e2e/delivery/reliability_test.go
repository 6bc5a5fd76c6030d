package delivery

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/mocklog"
	"github.com/sluicelog/sluice/protocol"
)

// envDuration reads a duration from the environment (default def).
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, name)
	return d
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, name)
	return n
}

// lastSeq is the last sequence number a mocklog run wrote, from the summary
// line it prints when it stops ("N events, ...", sequence numbers from 1).
func (e *env) lastSeq(name string) uint64 {
	e.t.Helper()
	m := regexp.MustCompile(`(\d+) events, `).FindAllStringSubmatch(readAll(e.logPath(name)), -1)
	require.NotEmpty(e.t, m, e.tail(name))
	n, err := strconv.ParseUint(m[len(m)-1][1], 10, 64)
	require.NoError(e.t, err)
	return n
}

// TestServerKilled: the server is SIGKILLed while mocklog keeps writing and
// stays down for SLUICE_E2E_SERVER_DOWN (default 15s; the figure is
// 60s: SLUICE_E2E_SERVER_DOWN=60s). The agent must keep reading into its
// disk buffer (the buffer metrics and files grow), and after the restart
// every line must be stored.
//
// Duplicates are possible only from requests in flight at the kill that the
// server committed without answering: at most max_concurrency (8) groups of
// at most one flush interval (1s) of one file's lines each — the bound
// asserted is 8 × rate × 1s.
func TestServerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("reliability test: ~40 s")
	}
	down := envDuration(t, "SLUICE_E2E_SERVER_DOWN", 15*time.Second)
	const (
		rate = 2000
		pre  = 5 * time.Second
		post = 8 * time.Second
	)
	total := uint64(rate * (pre + down + post).Seconds())
	e := newEnv(t)
	srv := e.startServer()
	e.provision()
	ag := e.startAgent(agentOpts{})
	gen := e.startMocklog(mocklogOpts{service: "web", firstSeq: 1, total: total, rate: rate, rotateBytes: "1MB"})

	// Let delivery run, then kill the server mid-stream.
	e.waitCount(1, 30*time.Second, 0)
	time.Sleep(pre)
	before, err := e.count()
	require.NoError(t, err)
	srv.Kill()
	t.Logf("server killed with %d logs stored; down for %s", before, down)

	bufDir := filepath.Join(e.dir, "agent/state/buffer", project, logstore)
	downUntil := time.Now().Add(down)
	var pending, buffered float64
	var files int64
	for time.Now().Before(downUntil) {
		time.Sleep(500 * time.Millisecond)
		if v, err := ag.Metric("sluice_buffer_pending_bytes"); err == nil {
			pending = max(pending, v)
		}
		if v, err := ag.Metric("sluice_output_sls_buffered_groups_total"); err == nil {
			buffered = v
		}
		files = max(files, dirBytes(bufDir))
	}
	t.Logf("during the outage: disk buffer up to %d bytes on disk (%.0f pending), %.0f groups buffered", files, pending, buffered)
	require.Positive(t, buffered, "groups written to the disk buffer while the server was down\n%s", e.tail("agent"))
	require.Positive(t, pending, "sluice_buffer_pending_bytes while the server was down")
	require.Positive(t, files, "buffer files under %s", bufDir)
	require.True(t, gen.Running(), "mocklog stopped before the server came back: the outage test needs lines written after the restart")

	srv = e.startServer()
	require.NoError(t, gen.Wait(2*(down+pre+post)), e.tail("mocklog-web"))
	e.waitCount(int64(total), 120*time.Second, 3*time.Second)
	require.Eventually(t, func() bool {
		v, err := ag.Metric("sluice_buffer_pending_bytes")
		return err == nil && v == 0
	}, 60*time.Second, 500*time.Millisecond, "disk buffer drained")

	tr, noSeq := e.seqs()
	require.Zero(t, noSeq)
	e.requireComplete(tr, 1, total)
	replayed, err := ag.Metric("sluice_output_sls_replayed_groups_total")
	require.NoError(t, err)
	bound := uint64(8 * rate)
	t.Logf("server down %s: %d lines, all stored; %.0f groups replayed from the disk buffer; %d duplicates (bound %d)",
		down, total, replayed, tr.Duplicates(), bound)
	require.Positive(t, replayed)
	require.LessOrEqual(t, tr.Duplicates(), bound)
	require.NoError(t, ag.Stop(30*time.Second), e.tail("agent"))
	require.NoError(t, srv.Stop(30*time.Second), e.tail("server"))
}

// TestAgentKilled: the agent is SIGKILLed at SLUICE_E2E_AGENT_KILLS (20)
// random moments, 0.3-3 s after it became healthy, and restarted at once,
// while mocklog writes a rotating file and the server stays up. Nothing may
// be missing.
//
// Duplicates: after a crash the agent re-reads from its persisted
// checkpoint, so it can re-send only lines that lie after the checkpoint it
// last wrote. The test computes that re-read window after every kill from
// the checkpoint file and the log files (lines after each tracked file's
// offset, plus whole files the checkpoint does not know) and asserts the
// duplicates stay within the sum of those windows. It also reports them per
// kill in seconds of production: with check_point_dump_interval=1 and the
// output's 1 s flush interval, about 1-2 s is expected.
func TestAgentKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("reliability test: ~1 minute")
	}
	kills := envInt(t, "SLUICE_E2E_AGENT_KILLS", 20)
	const rate = 2000
	e := newEnv(t)
	srv := e.startServer()
	e.provision()
	gen := e.startMocklog(mocklogOpts{service: "web", firstSeq: 1, total: 1 << 40, rate: rate, rotateBytes: "1MB"})

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var window uint64
	for i := range kills {
		ag := e.startAgent(agentOpts{})
		time.Sleep(time.Duration(300+rng.IntN(2700)) * time.Millisecond)
		ag.Kill()
		w := e.rereadWindow()
		window += w
		if i < 3 || i == kills-1 {
			t.Logf("kill %d: %d lines after the persisted checkpoint", i+1, w)
		}
	}
	ag := e.startAgent(agentOpts{})
	time.Sleep(2 * time.Second)
	require.NoError(t, gen.Stop(10*time.Second))
	last := e.lastSeq("mocklog-web")
	e.waitCount(int64(last), 120*time.Second, 3*time.Second)

	tr, noSeq := e.seqs()
	require.Zero(t, noSeq)
	e.requireComplete(tr, 1, last)
	dups := tr.Duplicates()
	t.Logf("%d agent kills: %d lines, all stored; %d duplicates (%.2f s of production per kill); re-read window bound %d",
		kills, last, dups, float64(dups)/float64(kills)/rate, window)
	require.LessOrEqual(t, dups, window, "duplicates beyond what the checkpoints allow")
	require.NoError(t, ag.Stop(30*time.Second), e.tail("agent"))
	require.NoError(t, srv.Stop(30*time.Second), e.tail("server"))
}

// rereadWindow counts the lines a restarted agent may read again: those
// after the offset of each file the checkpoint tracks, and every line of the
// files it does not track.
func (e *env) rereadWindow() uint64 {
	e.t.Helper()
	var ck struct {
		Files []struct {
			Inode  uint64 `json:"inode"`
			Offset int64  `json:"offset"`
		} `json:"files"`
	}
	offsets := map[uint64]int64{}
	if b, err := os.ReadFile(filepath.Join(e.dir, "agent/state/checkpoint")); err == nil {
		require.NoError(e.t, json.Unmarshal(b, &ck))
		for _, f := range ck.Files {
			offsets[f.Inode] = f.Offset
		}
	}
	files, err := filepath.Glob(filepath.Join(filepath.Dir(e.logFile("", "web")), "access.log*"))
	require.NoError(e.t, err)
	var n uint64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			continue // rotated away meanwhile
		}
		off := offsets[fi.Sys().(*syscall.Stat_t).Ino]
		b, err := os.ReadFile(f)
		if err != nil || off > int64(len(b)) {
			continue
		}
		n += uint64(bytes.Count(b[off:], []byte{'\n'}))
	}
	return n
}

// TestPermanentRejection: a config whose project name the server can never
// accept (underscores are not allowed in project names: 400 InvalidHost)
// sends into the dead-letter directory — every line of it, countable there
// and in the dead-letter metric, with the error next to it — while another
// config keeps delivering.
func TestPermanentRejection(t *testing.T) {
	const (
		badProject       = "no_such_project"
		goodTotal, total = 3000, 3000
	)
	e := newEnv(t)
	srv := e.startServer()
	e.provision()
	ag := e.startAgent(agentOpts{configs: map[string][]byte{
		"good.json": e.collectionConfig("good", "apps", project, logstore),
		"bad.json":  e.collectionConfig("bad", "other", badProject, logstore),
	}})
	good := e.startMocklog(mocklogOpts{service: "web", firstSeq: 1, total: goodTotal, rate: 2000})
	bad := e.startMocklog(mocklogOpts{root: "other", service: "web", firstSeq: 1_000_001, total: total, rate: 2000})
	require.NoError(t, good.Wait(30*time.Second))
	require.NoError(t, bad.Wait(30*time.Second))

	e.waitCount(goodTotal, 60*time.Second, 2*time.Second)
	require.Eventually(t, func() bool {
		v, err := ag.Metric("sluice_output_sls_dead_lettered_logs_total")
		return err == nil && v >= total
	}, 60*time.Second, 500*time.Millisecond, "dead-lettered logs\n%s", e.tail("agent"))
	v, err := ag.Metric("sluice_output_sls_dead_lettered_logs_total")
	require.NoError(t, err)
	require.EqualValues(t, total, v, "dead-lettered logs")

	// The good config delivered everything, the bad one nothing.
	tr, _ := e.seqs()
	e.requireComplete(tr, 1, goodTotal)
	require.EqualValues(t, goodTotal, tr.Count())
	require.Zero(t, tr.Duplicates())

	// Every rejected line is in the dead-letter directory, once, with the
	// error that rejected it.
	dl := filepath.Join(e.dir, "agent/state/buffer/dead-letter", badProject, logstore)
	groups, err := filepath.Glob(filepath.Join(dl, "*.loggroup"))
	require.NoError(t, err)
	require.NotEmpty(t, groups, "dead-letter files in %s", dl)
	dead := &mocklog.SeqTracker{}
	for _, g := range groups {
		b, err := os.ReadFile(g)
		require.NoError(t, err)
		var lg protocol.LogGroup
		require.NoError(t, lg.Unmarshal(b))
		for _, l := range lg.Logs {
			for _, c := range l.Contents {
				if c.Key == "request_uri" {
					s, ok := mocklog.ParseSeq([]byte(c.Value))
					require.True(t, ok, c.Value)
					dead.Add(s)
				}
			}
		}
		meta, err := os.ReadFile(g[:len(g)-len(".loggroup")] + ".error.json")
		require.NoError(t, err)
		var info struct {
			Status    int    `json:"status"`
			ErrorCode string `json:"errorCode"`
		}
		require.NoError(t, json.Unmarshal(meta, &info))
		require.Equal(t, 400, info.Status)
		require.Equal(t, "InvalidHost", info.ErrorCode)
	}
	require.Empty(t, dead.Missing(1_000_001, 1_000_000+total), dead.Summary(1_000_001, 1_000_000+total))
	require.Zero(t, dead.Duplicates())

	// And the agent said so in its log.
	sc := bufio.NewScanner(bytes.NewReader([]byte(readAll(e.logPath("agent")))))
	found := false
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte("dead-letter")) && bytes.Contains(sc.Bytes(), []byte("level=ERROR")) {
			found = true
		}
	}
	require.True(t, found, "an error about the dead-letter directory in the agent log")
	require.NoError(t, ag.Stop(30*time.Second), e.tail("agent"))
	require.NoError(t, srv.Stop(30*time.Second), e.tail("server"))
}
