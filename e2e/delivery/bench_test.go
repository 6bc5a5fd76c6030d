package delivery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100
// on every Linux architecture Go supports).
const clockTicks = 100

// procCPU is a process's user+system CPU time so far, all threads.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces: fields count from
	// after its closing parenthesis; utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procHWM is a process's peak resident set size (VmHWM) in bytes.
func procHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// countLines counts the newlines of a file and its size.
func countLines(t *testing.T, path string) (lines, size int64) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 4<<20)
	for {
		n, err := f.Read(buf)
		lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
		size += int64(n)
		if err == io.EOF {
			return lines, size
		}
		require.NoError(t, err)
	}
}

// TestBenchE2E is the end-to-end benchmark behind `make bench-e2e`
// (hack/bench-e2e.sh): the nginx file SLUICE_BENCH_E2E_FILE (1 GiB, made
// by mocklog) goes through sluice-agent into sluice-server; it reports
// throughput, CPU seconds per GiB and peak RSS of each process. It is a
// test gated by the variable rather than a Benchmark because one run is one
// measurement of minutes, not a loop. SLUICE_BENCH_E2E_DIR is the working
// directory (cleared first; default a temporary one), SLUICE_BENCH_E2E_OUT
// a file that receives the figures as JSON.
func TestBenchE2E(t *testing.T) {
	file := os.Getenv("SLUICE_BENCH_E2E_FILE")
	if file == "" {
		t.Skip("end-to-end benchmark: run `make bench-e2e` (SLUICE_BENCH_E2E_FILE=<nginx file>)")
	}
	lines, size := countLines(t, file)
	require.Positive(t, lines)

	e := newEnv(t)
	if d := os.Getenv("SLUICE_BENCH_E2E_DIR"); d != "" {
		require.NoError(t, os.RemoveAll(d))
		for _, sub := range []string{"server", "agent/configs", "agent/state", "logs"} {
			require.NoError(t, os.MkdirAll(filepath.Join(d, sub), 0o755))
		}
		e.dir = d
	}
	srv := e.startServer()
	e.provision()

	// The file is linked into the watched directory (copied when it lives
	// on another file system) before the agent starts; the config reads
	// existing files from their start whatever their size.
	dst := e.logFile("", "web")
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	if err := os.Link(file, dst); err != nil {
		t.Logf("hard link failed (%v): copying %s", err, file)
		copyFile(t, file, dst)
	}
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(e.collectionConfig(cfgName, "apps", project, logstore), &cfg))
	cfg["inputDetail"].(map[string]any)["advanced"] = map[string]any{"tail_size_kb": (size >> 10) + 1024}
	cfgJSON, err := json.Marshal(cfg)
	require.NoError(t, err)

	srvPid := srv.Cmd.Process.Pid
	srvCPU0, err := procCPU(srvPid)
	require.NoError(t, err)
	start := time.Now()
	o := agentOpts{configs: map[string][]byte{cfgName + ".json": cfgJSON}}
	if p := os.Getenv("SLUICE_BENCH_E2E_AGENT_PROFILE"); p != "" {
		o.args = []string{"--cpu-profile", p}
	}
	ag := e.startAgent(o)
	agPid := ag.Cmd.Process.Pid

	// Done when the agent has had every line accepted by the server (its
	// own counter: polling the server with SQL would cost server CPU).
	var sent float64
	deadline := time.Now().Add(envDuration(t, "SLUICE_BENCH_E2E_TIMEOUT", 30*time.Minute))
	lastLog := time.Now()
	for sent < float64(lines) {
		require.True(t, time.Now().Before(deadline), "timed out with %.0f/%d lines sent\n%s", sent, lines, e.tail("agent"))
		require.True(t, srv.Running() && ag.Running(), "%s\n%s", e.tail("agent"), e.tail("server"))
		time.Sleep(time.Second) // each scrape costs the agent a little CPU (process collector)
		if v, err := ag.Metric("sluice_output_sls_logs_sent_total"); err == nil {
			sent = v
		}
		if time.Since(lastLog) > 15*time.Second {
			t.Logf("%.0f/%d lines sent after %s", sent, lines, time.Since(start).Round(time.Second))
			lastLog = time.Now()
		}
	}
	wall := time.Since(start)
	agCPU, err := procCPU(agPid)
	require.NoError(t, err)
	srvCPU1, err := procCPU(srvPid)
	require.NoError(t, err)
	agHWM, err := procHWM(agPid)
	require.NoError(t, err)
	srvHWM, err := procHWM(srvPid)
	require.NoError(t, err)
	retries, _ := ag.Metric("sluice_output_sls_retries_total")
	buffered, _ := ag.Metric("sluice_output_sls_buffered_groups_total")
	wire, _ := ag.Metric("sluice_output_sls_wire_bytes_sent_total")

	gib := float64(size) / (1 << 30)
	mib := float64(size) / (1 << 20)
	srvCPU := srvCPU1 - srvCPU0
	res := map[string]any{
		"bytes": size, "lines": lines, "wall_seconds": wall.Seconds(),
		"mib_per_second":    mib / wall.Seconds(),
		"lines_per_second":  float64(lines) / wall.Seconds(),
		"agent_cpu_seconds": agCPU.Seconds(), "agent_cpu_seconds_per_gib": agCPU.Seconds() / gib,
		"agent_us_per_line": agCPU.Seconds() * 1e6 / float64(lines), "agent_peak_rss_bytes": agHWM,
		"server_cpu_seconds": srvCPU.Seconds(), "server_cpu_seconds_per_gib": srvCPU.Seconds() / gib,
		"server_us_per_line": srvCPU.Seconds() * 1e6 / float64(lines), "server_peak_rss_bytes": srvHWM,
		"wire_bytes": wire, "retries": retries, "buffered_groups": buffered,
		"server_data_bytes": dirBytes(filepath.Join(e.dir, "server")),
	}
	t.Logf("%d lines, %.1f MiB in %s: %.1f MiB/s, %.0f lines/s (wall, shared machine)", lines, mib, wall.Round(time.Millisecond), mib/wall.Seconds(), float64(lines)/wall.Seconds())
	t.Logf("agent:  %.1f CPU-s (%.1f CPU-s/GiB, %.2f µs/line), peak RSS %.0f MiB", agCPU.Seconds(), agCPU.Seconds()/gib, agCPU.Seconds()*1e6/float64(lines), float64(agHWM)/(1<<20))
	t.Logf("server: %.1f CPU-s (%.1f CPU-s/GiB, %.2f µs/line), peak RSS %.0f MiB, data dir %.0f MiB", srvCPU.Seconds(), srvCPU.Seconds()/gib, srvCPU.Seconds()*1e6/float64(lines), float64(srvHWM)/(1<<20), float64(res["server_data_bytes"].(int64))/(1<<20))
	t.Logf("wire %.1f MiB (lz4), %.0f retries, %.0f groups via the disk buffer", wire/(1<<20), retries, buffered)

	// Nothing missing; duplicates (requests that timed out on the client
	// while the server still committed them, then were retried: at-least-
	// once) are reported, not failed.
	row, err := e.one(`* | select count(*) as n, count(distinct regexp_extract(request_uri, 'seq=(\d+)', 1)) as d`)
	require.NoError(t, err)
	n, err := strconv.ParseInt(row["n"], 10, 64)
	require.NoError(t, err)
	distinct, err := strconv.ParseInt(row["d"], 10, 64)
	require.NoError(t, err)
	res["stored_logs"], res["duplicates"] = n, n-distinct
	t.Logf("stored %d logs, %d distinct sequence numbers, %d duplicates", n, distinct, n-distinct)
	require.Equal(t, lines, distinct, "distinct sequence numbers stored")
	if out := os.Getenv("SLUICE_BENCH_E2E_OUT"); out != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(out, b, 0o644))
	}
	require.NoError(t, ag.Stop(60*time.Second), e.tail("agent"))
	require.NoError(t, srv.Stop(120*time.Second), e.tail("server"))
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.Create(dst)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}
