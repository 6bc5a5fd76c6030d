// Package delivery proves agent → server delivery end to end with real
// processes: mocklog writes nginx access logs, sluice-agent (--output sls)
// collects them into sluice-server (embedded DuckDB store), and the tests
// read the result back through the official Go SDK (GetLogs with SQL),
// checking every sequence number, the tags and the parsed fields — also
// while the server or the agent is SIGKILLed.
//
// TestMain builds the three binaries once into a temporary directory.
// SLUICE_E2E_KEEP=1 keeps every test's working directory (process logs,
// server data, agent buffer) and logs where it is.
package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	sdk "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/e2e/e2etest"
	"github.com/sluicelog/sluice/mocklog"
)

// Binaries built by TestMain.
var serverBin, agentBin, mocklogBin string

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, map[string]*string{"sluice-server": &serverBin, "sluice-agent": &agentBin, "mocklog": &mocklogBin},
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait")))
}

const (
	adminID     = "delivery-admin"
	adminSecret = "delivery-secret-0123456789"
	project     = "delivery"
	logstore    = "nginx"
	cfgName     = "nginx-access"
	agentUserID = "delivery-agent"
)

// env is one test's world: a directory, a server address, an SDK client.
type env struct {
	t      *testing.T
	dir    string
	listen string
	client *sdk.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := e2etest.Dir(t)
	for _, d := range []string{"server", "agent/configs", "agent/state", "logs"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	e := &env{t: t, dir: dir, listen: e2etest.FreeAddr(t)}
	e.client = newClient(e.listen)
	return e
}

// newClient is an SDK client for the local server. The SDK addresses a
// project as {project}.{endpoint}; the transport dials the server whatever
// the host name, so no DNS is needed.
func newClient(listen string) *sdk.Client {
	c := &sdk.Client{Endpoint: listen, AccessKeyID: adminID, AccessKeySecret: adminSecret}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c.SetHTTPClient(&http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, listen)
		},
	}})
	return c
}

func (e *env) logPath(name string) string { return filepath.Join(e.dir, name+".log") }

// start runs bin; its output goes to DIR/NAME.log (appended across
// restarts).
func (e *env) start(name, bin string, args []string, extraEnv ...string) *e2etest.Process {
	e.t.Helper()
	return e2etest.Start(e.t, e.logPath(name), append([]string{bin}, args...), extraEnv...)
}

// tail is the end of a process log, for failure messages.
func (e *env) tail(name string) string {
	return name + " log:\n" + e2etest.Tail(e.logPath(name))
}

// startServer runs sluice-server over DIR/server on e.listen. The base
// domain makes the agent's Host {project}.127.0.0.1:port name the project.
func (e *env) startServer() *e2etest.Process {
	e.t.Helper()
	p := e.start("server", serverBin, []string{"serve", "--listen", e.listen,
		"--data-dir", filepath.Join(e.dir, "server"), "--base-domain", "127.0.0.1", "--log-level", "warn"},
		"SLUICE_ADMIN_KEY_ID="+adminID, "SLUICE_ADMIN_KEY_SECRET="+adminSecret)
	url := "http://" + e.listen + "/healthz"
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if !p.Running() || time.Now().After(deadline) {
			e.t.Fatalf("server not healthy at %s (running=%v): %v\n%s", url, p.Running(), err, e.tail("server"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// provision creates the project, the logstore with an index over the nginx
// fields and the tags, through the SDK.
func (e *env) provision() {
	e.t.Helper()
	c := e.client
	_, err := c.CreateProject(project, "delivery e2e")
	require.NoError(e.t, err)
	require.NoError(e.t, c.CreateLogStore(project, logstore, 7, 2, false, 0))
	text := map[string]any{"type": "text", "token": []string{" ", "/", "?", "=", "&", "\"", ":"}, "caseSensitive": false}
	keys := map[string]any{
		"status":          map[string]any{"type": "long"},
		"body_bytes_sent": map[string]any{"type": "long"},
		"request_time":    map[string]any{"type": "double"},
	}
	for _, k := range []string{"remote_addr", "remote_user", "time_local", "method", "request_uri", "protocol", "http_referer", "http_user_agent"} {
		keys[k] = text
	}
	// The crash tests tell agent runs apart by their __pack_id__ prefix.
	keys["__tag__:__pack_id__"] = map[string]any{"type": "text", "token": []string{}, "caseSensitive": true}
	idx, err := json.Marshal(map[string]any{
		"line": map[string]any{"token": []string{",", " ", "'", "\"", ";", "=", "(", ")", "[", "]", "{", "}", "?", "@", "&", "<", ">", "/", ":", "\n", "\t", "\r"}},
		"keys": keys,
	})
	require.NoError(e.t, err)
	require.NoError(e.t, c.CreateIndexString(project, logstore, string(idx)))
}

// collectionConfig is the Logtail config for the nginx files under
// DIR/logs/<root>/<service>/: the nginx regex, event time from time_local,
// topic (and tag "service") from the path.
func (e *env) collectionConfig(name, root, projectName, logstoreName string) []byte {
	b, err := json.Marshal(map[string]any{
		"configName": name,
		"inputType":  "file",
		"inputDetail": map[string]any{
			"logType":     "common_reg_log",
			"logPath":     filepath.Join(e.dir, "logs", root),
			"filePattern": "access.log*",
			"maxDepth":    2,
			"regex":       mocklog.NginxRegex,
			"key":         mocklog.NginxKeys(),
			"timeKey":     "time_local",
			"timeFormat":  mocklog.NginxTimeFormat,
			"topicFormat": `.*/` + root + `/(?P<service>[^/]+)/access\.log.*`,
			"tailExisted": true,
		},
		"outputType":   "LogService",
		"outputDetail": map[string]any{"projectName": projectName, "logstoreName": logstoreName},
	})
	require.NoError(e.t, err)
	return b
}

// agentOpts tune one agent run.
type agentOpts struct {
	logstore string // default logstore
	// configs replace the default collection config: file name → JSON.
	configs map[string][]byte
	// env adds environment variables (instance keys by their name, e.g.
	// buffer_file_num=2).
	env []string
	// args adds command-line flags.
	args []string
	// wrap runs the agent through a program that execs it (e.g. unshare
	// and mount, to give it a small disk).
	wrap []string
	// defaultCheckpoint leaves check_point_dump_interval at its default
	// (the tests otherwise write checkpoints every second).
	defaultCheckpoint bool
}

// startAgent writes the config and instance files (idempotent) and starts
// sluice-agent with --output sls on a fresh status port.
func (e *env) startAgent(o agentOpts) *e2etest.Agent {
	e.t.Helper()
	if o.logstore == "" {
		o.logstore = logstore
	}
	state := filepath.Join(e.dir, "agent/state")
	inst := map[string]any{
		"data_server_list":          []map[string]string{{"endpoint": "http://" + e.listen}},
		"access_key_id":             adminID,
		"access_key_secret":         adminSecret,
		"check_point_filename":      filepath.Join(state, "checkpoint"),
		"check_point_dump_interval": 1,
		"buffer_file_path":          filepath.Join(state, "buffer"),
		// Lifted from the 20 MB/s default: the benchmark measures what
		// agent and server can do, not the send limit.
		"max_bytes_per_sec": 1 << 30,
	}
	if o.defaultCheckpoint {
		delete(inst, "check_point_dump_interval")
	}
	b, err := json.Marshal(inst)
	require.NoError(e.t, err)
	instPath := filepath.Join(e.dir, "agent/instance.json")
	require.NoError(e.t, os.WriteFile(instPath, b, 0o600))
	if o.configs == nil {
		o.configs = map[string][]byte{cfgName + ".json": e.collectionConfig(cfgName, "apps", project, o.logstore)}
	}
	for name, data := range o.configs {
		require.NoError(e.t, os.WriteFile(filepath.Join(e.dir, "agent/configs", name), data, 0o644))
	}

	a := e2etest.StartAgent(e.t, e2etest.AgentOptions{
		Bin: agentBin, ConfigDir: filepath.Join(e.dir, "agent/configs"), Output: "sls",
		LogPath: e.logPath("agent"), ConfigPoll: 500 * time.Millisecond, ShutdownTimeout: 20 * time.Second,
		Args: append([]string{"--instance-config", instPath}, o.args...),
		Wrap: o.wrap,
		Env: append([]string{
			"ALIYUN_LOGTAIL_USER_DEFINED_ID=" + agentUserID,
			"ALIYUN_LOG_ENV_TAGS=e2e_cluster|e2e_unset",
			"e2e_cluster=blue",
		}, o.env...),
	})
	a.WaitHealthy(30 * time.Second)
	return a
}

// mocklogOpts are mocklog's flags for one service's file.
type mocklogOpts struct {
	root        string // default "apps"
	service     string // file DIR/logs/<root>/<service>/access.log
	firstSeq    uint64
	total       uint64
	rate        int // lines/s, 0 = as fast as possible
	rotateBytes string
	rotateMode  string // default rename
	rotateKeep  int    // default 50
	seed        uint64 // default firstSeq
}

func (e *env) logFile(root, service string) string {
	if root == "" {
		root = "apps"
	}
	return filepath.Join(e.dir, "logs", root, service, "access.log")
}

// startMocklog runs the mocklog binary; it exits after o.total lines.
func (e *env) startMocklog(o mocklogOpts) *e2etest.Process {
	e.t.Helper()
	path := e.logFile(o.root, o.service)
	require.NoError(e.t, os.MkdirAll(filepath.Dir(path), 0o755))
	if o.seed == 0 {
		o.seed = o.firstSeq
	}
	if o.rotateMode == "" {
		o.rotateMode = mocklog.RotateRename
	}
	if o.rotateKeep == 0 {
		o.rotateKeep = 50
	}
	args := []string{"--log-type=nginx", "--path=" + path,
		"--first-seq=" + strconv.FormatUint(o.firstSeq, 10), "--total-count=" + strconv.FormatUint(o.total, 10),
		"--logs-per-sec=" + strconv.Itoa(o.rate), "--seed=" + strconv.FormatUint(o.seed, 10)}
	if o.rotateBytes != "" {
		args = append(args, "--rotate-bytes="+o.rotateBytes, "--rotate-mode="+o.rotateMode, "--rotate-keep="+strconv.Itoa(o.rotateKeep))
	}
	return e.start("mocklog-"+o.service, mocklogBin, args)
}

// getLogs runs a query over all time through the SDK, retrying a few times
// (the server may have just restarted).
func (e *env) getLogs(query string, lines int64) (*sdk.GetLogsResponse, error) {
	var last error
	for range 5 {
		r, err := e.client.GetLogs(project, logstore, "", 0, time.Now().Add(24*time.Hour).Unix(), query, lines, 0, false)
		if err == nil {
			return r, nil
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	return nil, last
}

// count is the number of stored logs (0 before the first arrives).
func (e *env) count() (int64, error) {
	r, err := e.getLogs("* | select count(*) as n", 1)
	if err != nil {
		return 0, err
	}
	if len(r.Logs) == 0 {
		return 0, nil
	}
	return strconv.ParseInt(r.Logs[0]["n"], 10, 64)
}

// waitCount waits until at least n logs are stored and the count has been
// stable for settle; it returns the final count.
func (e *env) waitCount(n int64, timeout, settle time.Duration) int64 {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var last int64 = -1
	lastChange := time.Now()
	for {
		c, err := e.count()
		if err == nil && c != last {
			last, lastChange = c, time.Now()
		}
		if last >= n && time.Since(lastChange) >= settle {
			return last
		}
		if time.Now().After(deadline) {
			e.t.Logf("waited %s for %d logs, have %d (last error %v)", timeout, n, last, err)
			return last
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// seqs reads every stored log's sequence number (from request_uri's ?seq=N)
// into a tracker, and counts logs without one. The server returns at most
// 100,000 SQL rows, so the numbers are read in pages (ordered, so the
// pages do not overlap).
func (e *env) seqs() (*mocklog.SeqTracker, int) {
	e.t.Helper()
	const page = 50_000
	tr := &mocklog.SeqTracker{}
	noSeq := 0
	for off := 0; ; off += page {
		r, err := e.getLogs(fmt.Sprintf(`* | select regexp_extract(request_uri, 'seq=(\d+)', 1) as seq order by seq limit %d, %d`, off, page), 100)
		require.NoError(e.t, err)
		for _, l := range r.Logs {
			s, err := strconv.ParseUint(l["seq"], 10, 64)
			if err != nil {
				noSeq++
				continue
			}
			tr.Add(s)
		}
		if len(r.Logs) < page {
			return tr, noSeq
		}
	}
}

// requireComplete asserts that every sequence number first…last was stored.
func (e *env) requireComplete(tr *mocklog.SeqTracker, first, last uint64) {
	e.t.Helper()
	require.Empty(e.t, tr.Missing(first, last), "%s\n%s\n%s", tr.Summary(first, last), e.tail("agent"), e.tail("server"))
}

var errNoRows = errors.New("no rows")

// one runs a SQL query that returns one row.
func (e *env) one(query string) (map[string]string, error) {
	r, err := e.getLogs(query, 1)
	if err != nil {
		return nil, err
	}
	if len(r.Logs) == 0 {
		return nil, errNoRows
	}
	return r.Logs[0], nil
}

// readAll is io.ReadAll of a file, "" when missing.
func readAll(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return string(b)
}

// dirBytes is the total size of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
