package delivery

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/mocklog"
)

// TestDelivery: mocklog → agent → server with nothing killed. Two services
// write rotating nginx logs; every sequence number must be stored exactly
// once (the server does not deduplicate by __pack_id__, so a duplicate here
// would be a real double send), with the tags a Logtail user's dashboards
// use and the nginx fields parsed.
func TestDelivery(t *testing.T) {
	e := newEnv(t)
	srv := e.startServer()
	e.provision()
	ag := e.startAgent(agentOpts{})

	const (
		webFirst, webTotal = 1, 20_000
		apiFirst, apiTotal = 1_000_001, 5_000
	)
	web := e.startMocklog(mocklogOpts{service: "web", firstSeq: webFirst, total: webTotal, rate: 5000, rotateBytes: "1MB"})
	api := e.startMocklog(mocklogOpts{service: "api", firstSeq: apiFirst, total: apiTotal, rate: 1000})
	require.NoError(t, web.Wait(60*time.Second), e.tail("mocklog-web"))
	require.NoError(t, api.Wait(60*time.Second), e.tail("mocklog-api"))

	n := e.waitCount(webTotal+apiTotal, 90*time.Second, 3*time.Second)
	tr, noSeq := e.seqs()
	require.Zero(t, noSeq, "logs without a parsed request_uri seq")
	e.requireComplete(tr, webFirst, webFirst+webTotal-1)
	e.requireComplete(tr, apiFirst, apiFirst+apiTotal-1)
	require.Zero(t, tr.Duplicates(), "duplicates with nothing killed")
	require.EqualValues(t, webTotal+apiTotal, n, "stored logs")

	// Tags and topic, per service: every log carries them. (SQL cannot read
	// __tag__ columns in the DuckDB store — a documented limit — so the
	// tags are matched by the search part, as users filter on them.)
	hostname, err := os.Hostname()
	require.NoError(t, err)
	for svc, total := range map[string]int{"web": webTotal, "api": apiTotal} {
		q := fmt.Sprintf(`__topic__: %s and __tag__:service: %s and __tag__:__hostname__: %q and `+
			`__tag__:__user_defined_id__: %q and __tag__:e2e_cluster: blue | select count(*) as n`, svc, svc, hostname, agentUserID)
		row, err := e.one(q)
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(total), row["n"], "logs of %s with topic and tags right (%s)", svc, q)
	}

	// An env tag named in ALIYUN_LOG_ENV_TAGS but unset is sent empty (not
	// indexed, so look at a search result rather than SQL).
	r, err := e.getLogs("*", 1)
	require.NoError(t, err)
	require.Len(t, r.Logs, 1)
	unset, ok := r.Logs[0]["__tag__:e2e_unset"]
	require.True(t, ok, "tag e2e_unset missing: %v", r.Logs[0])
	require.Empty(t, unset)
	require.NotEmpty(t, r.Logs[0]["__tag__:__pack_id__"], "__pack_id__ tag")

	// __path__: the file each line was read from (rotated names included).
	pathRE := regexp.MustCompile(`^` + regexp.QuoteMeta(filepath.Join(e.dir, "logs", "apps")) + `/(web|api)/access\.log(\.\d+)?$`)
	r, err = e.getLogs("*", 100)
	require.NoError(t, err)
	require.NotEmpty(t, r.Logs)
	for _, l := range r.Logs {
		require.Regexp(t, pathRE, l["__tag__:__path__"])
		require.Contains(t, l["__tag__:__path__"], "/"+l["__topic__"]+"/")
	}
	row, err := e.one(`__tag__:__path__: "` + filepath.Join(e.dir, "logs", "apps") + `" | select count(*) as n`)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(webTotal+apiTotal), row["n"], "logs with a __path__ under the log directory")

	// Fields: a few lines, looked up by seq, equal the nginx regex applied
	// to the line mocklog wrote, and __time__ is time_local.
	lines := linesBySeq(t, filepath.Dir(e.logFile("", "web")), map[uint64]bool{webFirst: true, webFirst + webTotal/2: true, webFirst + webTotal - 1: true})
	re := regexp.MustCompile(`^` + mocklog.NginxRegex + `$`)
	for seq, line := range lines {
		m := re.FindStringSubmatch(line)
		require.NotNil(t, m, line)
		res, err := e.getLogs(`* | select `+strings.Join(mocklog.NginxKeys(), ", ")+`, __time__ as t, __topic__ as topic where regexp_extract(request_uri, 'seq=(\d+)', 1) = '`+strconv.FormatUint(seq, 10)+`'`, 10)
		require.NoError(t, err)
		require.Len(t, res.Logs, 1, "seq %d", seq)
		stored := res.Logs[0]
		for i, k := range mocklog.NginxKeys() {
			require.Equal(t, m[i+1], stored[k], "seq %d field %s", seq, k)
		}
		ts, err := time.Parse("02/Jan/2006:15:04:05 -0700", m[3])
		require.NoError(t, err)
		require.Equal(t, strconv.FormatInt(ts.Unix(), 10), stored["t"], "seq %d __time__", seq)
		require.Equal(t, "web", stored["topic"])
	}

	for _, what := range []string{"sluice_output_sls_dead_lettered_logs_total", "sluice_buffer_corrupt_bytes_total"} {
		v, err := ag.Metric(what)
		require.NoError(t, err)
		require.Zero(t, v, what)
	}
	require.NoError(t, ag.Stop(30*time.Second), e.tail("agent"))
	require.NoError(t, srv.Stop(30*time.Second), e.tail("server"))
}

// linesBySeq finds the lines carrying the wanted sequence numbers in the
// files of dir (the live file and its rotations).
func linesBySeq(t *testing.T, dir string, want map[uint64]bool) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	files, err := filepath.Glob(filepath.Join(dir, "access.log*"))
	require.NoError(t, err)
	for _, f := range files {
		fh, err := os.Open(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if s, ok := mocklog.ParseSeq(sc.Bytes()); ok && want[s] {
				out[s] = sc.Text()
			}
		}
		require.NoError(t, sc.Err())
		fh.Close()
	}
	require.Len(t, out, len(want), "lines found in %s", dir)
	return out
}
