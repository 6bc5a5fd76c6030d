// Command quickstart runs the whole of Sluice on one machine, for a first
// look: sluice-server on its embedded store, a sluice-agent, and mocklog
// writing nginx access logs that the agent collects into the server. It
// creates the project, logstore, index and collection config through the Log
// Service API (with the official Go SDK, as any user's tooling would), waits
// until logs arrive, then prints how to look at them.
//
// `make run` builds the binaries and runs this. Ctrl-C stops everything.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sluicelog/sluice/mocklog"
)

const (
	project  = "quickstart"
	logstore = "nginx-access"
	group    = "quickstart-agents"
	agentID  = "quickstart"
	cfgName  = "nginx-access"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// lockDir takes an exclusive lock on dir's sibling DIR.lock (the kernel
// drops it when the process ends, however it ends) and returns its
// release.
func lockDir(dir string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	path := dir + ".lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("another quickstart (pid %s) is running on %s: stop it first, or give this one another --dir, --listen and --agent-http",
			strings.TrimSpace(string(pid)), dir)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
	return func() { f.Close() }, nil
}

type options struct {
	bin, dir          string
	listen, agentHTTP string
	rate              int
	keep              bool
}

func run() error {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory with sluice-server, sluice-agent and mocklog (make build)")
	flag.StringVar(&o.dir, "dir", ".cache/quickstart", "working directory: server data, agent state, generated logs")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:8080", "sluice-server address")
	flag.StringVar(&o.agentHTTP, "agent-http", "127.0.0.1:7953", "sluice-agent status/metrics address")
	flag.IntVar(&o.rate, "rate", 50, "nginx lines per second mocklog writes")
	flag.BoolVar(&o.keep, "keep", false, "keep the data of an earlier run (default: start from scratch)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: go run ./hack/quickstart [flags]\n\n"+
			"Starts sluice-server, sluice-agent and mocklog on this machine and shows the logs arriving.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	// SIGHUP: a closed terminal stops everything as Ctrl-C does.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	for _, b := range []string{"sluice-server", "sluice-agent", "mocklog"} {
		if _, err := os.Stat(filepath.Join(o.bin, b)); err != nil {
			return fmt.Errorf("%s not found in %s: run `make build` first", b, o.bin)
		}
	}
	abs, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	o.dir = abs
	// One run per directory: a second `make run` must not empty the data
	// of the one running (it did, before noticing the port was taken).
	unlock, err := lockDir(o.dir)
	if err != nil {
		return err
	}
	defer unlock()
	for _, addr := range []string{o.listen, o.agentHTTP} {
		if err := portFree(addr); err != nil {
			return err
		}
	}
	if !o.keep {
		if err := os.RemoveAll(o.dir); err != nil {
			return fmt.Errorf("clean %s: %w", o.dir, err)
		}
	}
	for _, d := range []string{"server", "agent/state", "logs"} {
		if err := os.MkdirAll(filepath.Join(o.dir, d), 0o755); err != nil {
			return err
		}
	}
	keyID, keySecret := "quickstart-admin", randomSecret()
	procs := &procGroup{logDir: o.dir}
	defer procs.stopAll()

	step("starting sluice-server on http://%s (data in %s/server)", o.listen, o.dir)
	if err := procs.start("server", filepath.Join(o.bin, "sluice-server"), []string{
		"serve", "--listen", o.listen, "--data-dir", filepath.Join(o.dir, "server"),
	}, "SLUICE_ADMIN_KEY_ID="+keyID, "SLUICE_ADMIN_KEY_SECRET="+keySecret); err != nil {
		return err
	}
	if err := waitHTTP(ctx, "http://"+o.listen+"/healthz", 30*time.Second); err != nil {
		return fmt.Errorf("sluice-server did not become healthy (see %s): %w", procs.logPath("server"), err)
	}

	client := newClient(o.listen, keyID, keySecret)
	step("creating project %q, logstore %q with an index, machine group and collection config", project, logstore)
	if err := provision(client, o); err != nil {
		return err
	}

	step("starting sluice-agent (machine group %q, configs from the server, status on http://%s/status)", group, o.agentHTTP)
	instance := map[string]any{
		"data_server_list":          []map[string]string{{"endpoint": "http://" + o.listen}},
		"config_server_address":     "http://" + o.listen,
		"access_key_id":             keyID,
		"access_key_secret":         keySecret,
		"check_point_filename":      filepath.Join(o.dir, "agent/state/checkpoint"),
		"check_point_dump_interval": 2,
		"buffer_file_path":          filepath.Join(o.dir, "agent/state/buffer"),
		"user_config_file_path":     filepath.Join(o.dir, "agent/state/user_log_config.json"),
	}
	instPath := filepath.Join(o.dir, "agent/instance.json")
	if err := writeJSON(instPath, instance); err != nil {
		return err
	}
	// The agent gets its collection config from the server (the config applied
	// to its machine group above), like a fleet would. Server configs may only
	// read under allowed roots; the quickstart's log directory is one.
	if err := procs.start("agent", filepath.Join(o.bin, "sluice-agent"), []string{
		"run", "--config-server", "http://" + o.listen, "--heartbeat-interval", "2s", "--output", "sls",
		"--instance-config", instPath, "--http-listen", o.agentHTTP, "--stop-delay", "0s",
	}, "ALIYUN_LOGTAIL_USER_DEFINED_ID="+agentID, "ALIYUN_LOG_ENV_TAGS=quickstart_env", "quickstart_env=demo",
		"SLUICE_ALLOWED_LOG_ROOTS="+filepath.Join(o.dir, "logs")); err != nil {
		return err
	}
	if err := waitHTTP(ctx, "http://"+o.agentHTTP+"/healthz", 30*time.Second); err != nil {
		return fmt.Errorf("sluice-agent did not become healthy (see %s): %w", procs.logPath("agent"), err)
	}

	step("starting mocklog: %d nginx lines/s into %s/logs/access.log (rotated every 10 MB)", o.rate, o.dir)
	if err := procs.start("mocklog", filepath.Join(o.bin, "mocklog"), []string{
		"--log-type=nginx", "--path=" + filepath.Join(o.dir, "logs/access.log"),
		fmt.Sprintf("--logs-per-sec=%d", o.rate), "--rotate-bytes=10MB", "--rotate-mode=rename", "--rotate-keep=3",
	}); err != nil {
		return err
	}

	step("waiting for the first logs to arrive")
	deadline := time.Now().Add(60 * time.Second)
	var n int64
	for n == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("no logs arrived within 60 s: see %s and %s", procs.logPath("agent"), procs.logPath("server"))
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-procs.exited:
			return err
		case <-time.After(time.Second):
		}
		n, _ = count(client)
	}
	sample, _ := client.GetLogs(project, logstore, "", time.Now().Add(-time.Hour).Unix(), time.Now().Add(time.Minute).Unix(),
		"status >= 200 | select status, count(*) as n group by status order by n desc", 10, 0, true)

	printWelcome(o, keyID, keySecret, procs, sample)

	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	last, lastAt := n, time.Now()
	for {
		select {
		case <-ctx.Done():
			fmt.Println("\nstopping mocklog, agent and server …")
			return nil
		case err := <-procs.exited:
			return err
		case <-t.C:
			c, err := count(client)
			if err != nil {
				fmt.Println("  count failed:", err)
				continue
			}
			now := time.Now()
			fmt.Printf("  %s  %d lines stored (+%.0f/s)\n", now.Format("15:04:05"), c, float64(c-last)/now.Sub(lastAt).Seconds())
			last, lastAt = c, now
		}
	}
}

func provision(c *sls.Client, o options) error {
	if _, err := c.CreateProject(project, "Sluice quickstart"); err != nil && !isExists(err) {
		return fmt.Errorf("create project: %w", err)
	}
	if err := c.CreateLogStore(project, logstore, 7, 2, false, 0); err != nil && !isExists(err) {
		return fmt.Errorf("create logstore: %w", err)
	}
	text := func() map[string]any {
		return map[string]any{"type": "text", "token": []string{" ", "/", "?", "=", "&", "\"", ":"}, "caseSensitive": false}
	}
	keys := map[string]any{
		"status":          map[string]any{"type": "long"},
		"body_bytes_sent": map[string]any{"type": "long"},
		"request_time":    map[string]any{"type": "double"},
	}
	for _, k := range []string{"remote_addr", "method", "request_uri", "protocol", "http_referer", "http_user_agent"} {
		keys[k] = text()
	}
	idx, _ := json.Marshal(map[string]any{
		"line": map[string]any{"token": []string{",", " ", "'", "\"", ";", "=", "(", ")", "[", "]", "{", "}", "?", "@", "&", "<", ">", "/", ":", "\n", "\t", "\r"}, "caseSensitive": false},
		"keys": keys,
	})
	if err := c.CreateIndexString(project, logstore, string(idx)); err != nil && !isExists(err) {
		return fmt.Errorf("create index: %w", err)
	}
	cfg := map[string]any{
		"configName": cfgName,
		"inputType":  "file",
		"inputDetail": map[string]any{
			"logType":     "common_reg_log",
			"logPath":     filepath.Join(o.dir, "logs"),
			"filePattern": "access.log*",
			"regex":       mocklog.NginxRegex,
			"key":         mocklog.NginxKeys(),
			"timeFormat":  mocklog.NginxTimeFormat,
			"timeKey":     "time_local",
			"topicFormat": "none",
		},
		"outputType":   "LogService",
		"outputDetail": map[string]any{"projectName": project, "logstoreName": logstore},
	}
	body, _ := json.Marshal(cfg)
	if err := c.CreateConfigString(project, string(body)); err != nil && !isExists(err) {
		return fmt.Errorf("create config: %w", err)
	}
	mg := &sls.MachineGroup{Name: group, MachineIDType: "userdefined", MachineIDList: []string{agentID}}
	if err := c.CreateMachineGroup(project, mg); err != nil && !isExists(err) {
		return fmt.Errorf("create machine group: %w", err)
	}
	if err := c.ApplyConfigToMachineGroup(project, cfgName, group); err != nil {
		return fmt.Errorf("apply config: %w", err)
	}
	return nil
}

func count(c *sls.Client) (int64, error) {
	r, err := c.GetLogs(project, logstore, "", 0, time.Now().Add(time.Hour).Unix(), "* | select count(*) as n", 1, 0, false)
	if err != nil {
		return 0, err
	}
	if len(r.Logs) == 0 {
		return 0, nil
	}
	return strconv.ParseInt(r.Logs[0]["n"], 10, 64)
}

func printWelcome(o options, keyID, keySecret string, p *procGroup, sample *sls.GetLogsResponse) {
	consoleURL := "http://" + o.listen + "/console/"
	hasConsole := false
	if resp, err := http.Get(consoleURL); err == nil {
		hasConsole = resp.StatusCode == http.StatusOK
		resp.Body.Close()
	}
	fmt.Println()
	fmt.Println("  Sluice is running: logs flow mocklog → sluice-agent → sluice-server.")
	fmt.Println()
	if hasConsole {
		fmt.Printf("  Console     %s\n", consoleURL)
	}
	fmt.Printf("  Endpoint    http://%s   project %q, logstore %q\n", o.listen, project, logstore)
	fmt.Printf("  Access key  %s / %s\n", keyID, keySecret)
	fmt.Println()
	if sample != nil && len(sample.Logs) > 0 {
		fmt.Println("  Status codes so far:")
		for _, l := range sample.Logs {
			fmt.Printf("    %-5s %s\n", l["status"], l["n"])
		}
		fmt.Println()
	}
	fmt.Println("  Query from a terminal:")
	fmt.Printf("    SLUICE_ENDPOINT=http://%s SLUICE_ACCESS_KEY_ID=%s SLUICE_ACCESS_KEY_SECRET=%s \\\n", o.listen, keyID, keySecret)
	fmt.Printf("      %s/sluice-server query --project %s --logstore %s --from -15m \\\n", o.bin, project, logstore)
	fmt.Println("      'status >= 400 | select status, method, count(*) as n group by status, method order by n desc limit 10'")
	fmt.Println()
	fmt.Printf("  Agent status:  %s/sluice-agent status --addr %s\n", o.bin, o.agentHTTP)
	fmt.Printf("  Process logs:  %s  %s  %s\n", p.logPath("server"), p.logPath("agent"), p.logPath("mocklog"))
	fmt.Println()
	fmt.Println("  Ctrl-C stops everything. Counting stored lines every 10 s:")
}

// newClient returns an SDK client for the local server. The SDK addresses a
// project as {project}.{endpoint}; the transport dials the server whatever
// the host name, so no DNS setup is needed.
func newClient(listen, id, secret string) *sls.Client {
	c := &sls.Client{Endpoint: listen, AccessKeyID: id, AccessKeySecret: secret}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c.SetHTTPClient(&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, listen)
		},
	}})
	return c
}

func isExists(err error) bool {
	var e *sls.Error
	if errors.As(err, &e) {
		return strings.HasSuffix(e.Code, "AlreadyExist") || strings.HasSuffix(e.Code, "AlreadyExists")
	}
	return strings.Contains(err.Error(), "AlreadyExist")
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func randomSecret() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is in use (another sluice-server or sluice-agent?): stop it, or pass --listen / --agent-http", addr)
	}
	return ln.Close()
}

func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// procGroup runs the child processes, each logging to its own file, and
// stops them in reverse start order (mocklog, agent, server) so the agent
// can deliver what it read before the server goes away.
type procGroup struct {
	logDir   string
	procs    []*proc
	exited   chan error
	stopping atomic.Bool
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *procGroup) logPath(name string) string { return filepath.Join(p.logDir, name+".log") }

func (p *procGroup) start(name, bin string, args []string, env ...string) error {
	if p.exited == nil {
		p.exited = make(chan error, 8)
	}
	f, err := os.Create(p.logPath(name))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C goes to us; we stop children in order
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	pr := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	p.procs = append(p.procs, pr)
	go func() {
		err := cmd.Wait()
		f.Close()
		close(pr.done)
		if !p.stopping.Load() {
			p.exited <- fmt.Errorf("%s exited unexpectedly (%v); the end of its log:\n%s", name, err, tail(p.logPath(name), 20))
		}
	}()
	return nil
}

func (p *procGroup) stopAll() {
	p.stopping.Store(true)
	for i := len(p.procs) - 1; i >= 0; i-- {
		pr := p.procs[i]
		_ = pr.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-pr.done:
		case <-time.After(30 * time.Second):
			fmt.Printf("%s did not stop within 30 s; killing it\n", pr.name)
			_ = pr.cmd.Process.Kill()
			<-pr.done
		}
	}
}

func tail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return "  " + strings.Join(l, "\n  ")
}
