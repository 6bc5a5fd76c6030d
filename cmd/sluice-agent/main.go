// Command sluice-agent is the Sluice log collector: it tails the files and
// container stdout named by Logtail collection configs (from a directory or
// the server's machine groups) and sends their events to
// standard output, a file (JSON lines), nowhere (benchmarks) or a Log
// Service endpoint (sluice-server). See `sluice-agent --help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/sluicelog/sluice/agent/app"
	"github.com/sluicelog/sluice/agent/configclient"
	"github.com/sluicelog/sluice/agent/input/containerstdout"
	"github.com/sluicelog/sluice/agent/logtail"
	"github.com/sluicelog/sluice/internal/cli"
	"github.com/sluicelog/sluice/internal/version"
	"github.com/sluicelog/sluice/logconfig"
)

const usage = `sluice-agent — log collector (Logtail-compatible configs)

Usage:
  sluice-agent [run] --config-dir DIR [flags]   collect until SIGTERM/SIGINT
  sluice-agent [run] --config-server ADDR [flags]  … with configs from the server's machine groups
  sluice-agent status [--addr HOST:PORT]        ask a running agent; exit 0 healthy, 1 not
                                                (usable as a Kubernetes liveness probe)
  sluice-agent --version                        print the version and exit
  sluice-agent supervise [--stop-delay D] [run flags]
                                                run_logtail.sh's supervision: the agent runs as a
                                                child, restarted when it dies, stopped and started
                                                in place by /etc/init.d/ilogtaild, collecting for
                                                D (default 10s) after SIGTERM (the image's default)
  sluice-agent applets [--install ROOT]         list the Logtail names this binary answers to
                                                (sh -c, run_logtail.sh N, /etc/init.d/ilogtaild
                                                start|stop|restart|status, cat); --install links
                                                them under ROOT (the image build does)

Run flags:
  --config-dir DIR        directory of collection configs, one Logtail config JSON per *.json
                          file ({"configName":..,"inputType":"file","inputDetail":{..},
                          "outputDetail":{"projectName":..,"logstoreName":..}}). Re-read every
                          --config-poll: added, changed and deleted files are applied while the
                          agent runs; a broken file is reported in status and the others (and
                          its previous version) keep collecting. (env SLUICE_CONFIG_DIR)
  --output KIND           where events go (env SLUICE_OUTPUT; default stdout):
                            stdout       JSON lines on standard output
                            file:PATH    JSON lines appended (and fsynced) to PATH
                            null         discarded, counted (benchmarks, dry runs)
                            sls          Log Service / sluice-server: endpoint and access key
                                         from the instance config, project and logstore from
                                         each config's outputDetail
  --instance-config PATH  instance config JSON, ilogtail_config.json keys: check_point_filename,
                          check_point_dump_interval, buffer_file_path, data_server_list,
                          access_key_id/secret, default_tail_limit_kb, max_read_buffer_size,
                          max_bytes_per_sec (send limit of the whole agent, default 20 MiB/s),
                          buffer_file_num × buffer_file_size (disk buffer of the whole agent) …
                          (default $ALIYUN_LOGTAIL_CONFIG; every key can also be set by an
                          environment variable of the same name, e.g. check_point_filename=/data/cp)
  --http-listen ADDR      serve /healthz, /status (JSON) and /metrics (Prometheus) here
                          (default 127.0.0.1:7953; empty disables)
  --stop-delay D          after SIGTERM keep collecting this long before stopping, so the last
                          lines the app writes while it stops get out (like run_logtail.sh 10;
                          default 10s)
  --shutdown-timeout D    after the stop delay: stop inputs, wait for outputs to deliver what was
                          read, save checkpoints, within this long (default 20s). A second signal
                          skips the delay and the wait (checkpoints of delivered data are saved).
  --ignore-device         match checkpoints by inode and file signature at any path, not the device
                          id (env SLUICE_IGNORE_DEVICE=true). Without it a file at its checkpointed
                          path is still matched when a PV/NAS volume's device id changes (the pod
                          moved to another node); the flag matters only if the mount path changes too
  --config-poll D         how often the config directory is re-read (default 1s)
  --config-server ADDR    central config: heartbeat to this sluice-server (host:port or
                          http(s)://host[:port]; usually the instance's config_server_address),
                          collect the configs applied to this agent's machine groups (matched by
                          IP or ALIYUN_LOGTAIL_USER_DEFINED_ID), report their status, cache them in
                          user_config_file_path. Signed with access_key_id/secret; server configs
                          may only read under allowed_log_roots. With it, --config-dir is optional.
                          See docs/central-config.md. (env SLUICE_CONFIG_SERVER)
  --heartbeat-interval D  time between heartbeats to --config-server (default 10s)
  --file-poll D           how often log directories and files are checked (default 500ms)
  --log-format F          text | json (default text); logs go to standard error
  --log-level L           debug | info | warn | error (default info)
  --cpu-profile FILE      write a CPU profile until exit (performance work)

Container flags (DaemonSet and serverless stdout; see docs/kubernetes.md):
  --kube-node NAME        watch this node's pods for container metadata (_pod_name_, _namespace_,
                          labels, env, volumes) and include/exclude selection; needs the in-cluster
                          service account or --kubeconfig (env NODE_NAME: set it from the downward
                          API spec.nodeName). Without it, service_docker_stdout configs tag logs with
                          what the log paths tell and dockerFile configs are refused.
  --kubeconfig PATH       API access outside a cluster (env KUBECONFIG)
  --kube-sync-timeout D   wait this long for the pod cache at start, then collect anyway (default 30s)
  --stdout-root DIR       container logs for service_docker_stdout (default /var/log/pods;
                          env SLUICE_STDOUT_ROOT)
  --stdout-layout L       pods (/var/log/pods/<ns>_<pod>_<uid>/<container>/N.log, default) or flat
                          (a serverless pod's stdout volume, e.g. /stdlog) (env SLUICE_STDOUT_LAYOUT)
  --host-root DIR         where the host's root is mounted, for dockerFile configs (default
                          /logtail_host; env SLUICE_HOST_ROOT)
  --kubelet-root DIR      kubelet's root on the host (default /var/lib/kubelet; env SLUICE_KUBELET_ROOT)

Status flags:
  --addr HOST:PORT        the agent's --http-listen (default 127.0.0.1:7953)
  --json                  print the status JSON as the agent returns it

Environment (Logtail names): ALIYUN_LOGTAIL_CONFIG, ALIYUN_LOGTAIL_USER_DEFINED_ID (tag
__user_defined_id__), ALIYUN_LOG_ENV_TAGS (a|b|c: each named variable becomes a tag),
check_point_filename, check_point_dump_interval, buffer_file_path and the other instance keys.
`

func main() {
	// Called by one of the Logtail names (a link to this binary, as the
	// image has them): answer as that name, as busybox does.
	if logtail.IsApplet(os.Args[0]) {
		os.Exit(logtail.RunApplet(os.Args, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdoutW, stderr io.Writer) int {
	if version.IsFlag(args) {
		fmt.Fprintln(stdoutW, version.String("sluice-agent"))
		return 0
	}
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runAgent(args, getenv, stdoutW, stderr)
	case "status":
		return runStatus(args, getenv, stdoutW, stderr)
	case "supervise":
		return logtail.RunSupervisor(args, stdoutW, stderr)
	case "applets":
		return runApplets(args, stdoutW, stderr)
	case "help":
		fmt.Fprint(stdoutW, usage)
		return 0
	default:
		return cli.Exit("sluice-agent", cli.Usagef("unknown command %q: use run, status, supervise or applets", cmd), stderr)
	}
}

type runFlags struct {
	cfg                 app.Config
	instancePath        string
	logFormat, logLevel string
	cpuProfile          string
	// logtailMode: neither a config source nor an output was given, so
	// the agent behaves as Logtail: configs from and logs to the server
	// the instance settings name.
	logtailMode bool
}

// parseRunFlags reads run's flags; errors are *cli.UsageError, and --help
// prints the usage on stdout (flag.ErrHelp).
func parseRunFlags(args []string, getenv func(string) string, stdout io.Writer) (*runFlags, error) {
	f, err := parseRunFlagsValues(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil, err
	}
	return f, cli.Usage(err)
}

func parseRunFlagsValues(args []string, getenv func(string) string, stdout io.Writer) (*runFlags, error) {
	f := &runFlags{}
	c := &f.cfg
	fs := flag.NewFlagSet("sluice-agent", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage) }
	def := func(env, d string) string {
		if v := getenv(env); v != "" {
			return v
		}
		return d
	}
	fs.StringVar(&c.ConfigDir, "config-dir", getenv("SLUICE_CONFIG_DIR"), "")
	fs.StringVar(&c.Output, "output", def("SLUICE_OUTPUT", "stdout"), "")
	fs.StringVar(&f.instancePath, "instance-config", getenv(logconfig.EnvConfigPath), "")
	fs.StringVar(&c.HTTPListen, "http-listen", logtail.HTTPListen(getenv), "")
	fs.DurationVar(&c.StopDelay, "stop-delay", 10*time.Second, "")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "")
	fs.BoolVar(&c.IgnoreDevice, "ignore-device", getenv("SLUICE_IGNORE_DEVICE") == "true", "")
	fs.DurationVar(&c.ConfigPoll, "config-poll", time.Second, "")
	fs.DurationVar(&c.FilePoll, "file-poll", 500*time.Millisecond, "")
	fs.StringVar(&c.ConfigServer, "config-server", getenv("SLUICE_CONFIG_SERVER"), "")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", 10*time.Second, "")
	fs.StringVar(&f.logFormat, "log-format", "text", "")
	fs.StringVar(&f.logLevel, "log-level", "info", "")
	fs.StringVar(&f.cpuProfile, "cpu-profile", "", "")
	fs.StringVar(&c.Kube.Node, "kube-node", getenv("NODE_NAME"), "")
	fs.StringVar(&c.Kube.Kubeconfig, "kubeconfig", getenv("KUBECONFIG"), "")
	fs.DurationVar(&c.Kube.SyncTimeout, "kube-sync-timeout", 30*time.Second, "")
	fs.StringVar(&c.Container.StdoutRoot, "stdout-root", getenv("SLUICE_STDOUT_ROOT"), "")
	fs.StringVar(&c.Container.StdoutLayout, "stdout-layout", def("SLUICE_STDOUT_LAYOUT", containerstdout.LayoutPods), "")
	fs.StringVar(&c.Container.HostRoot, "host-root", getenv("SLUICE_HOST_ROOT"), "")
	fs.StringVar(&c.Container.KubeletRoot, "kubelet-root", getenv("SLUICE_KUBELET_ROOT"), "")
	if err := cli.Parse(fs, args, stdout); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: every setting is a --flag (see --help)", fs.Args())
	}
	if c.HeartbeatInterval <= 0 {
		return nil, errors.New("--heartbeat-interval must be > 0, e.g. 10s")
	}
	if c.StopDelay < 0 || c.ShutdownTimeout <= 0 {
		return nil, errors.New("--stop-delay must be ≥ 0 and --shutdown-timeout > 0")
	}
	outputSet := getenv("SLUICE_OUTPUT") != ""
	fs.Visit(func(fl *flag.Flag) { outputSet = outputSet || fl.Name == "output" })
	f.logtailMode = c.ConfigDir == "" && c.ConfigServer == "" && !outputSet
	if c.ConfigDir == "" && c.ConfigServer == "" {
		// Logtail's agents take their configs from the server they are
		// pointed at and send it the logs: the endpoint alone turns
		// central configs and delivery on (config_server_address as a
		// variable, or derived from ALIYUN_LOGTAIL_CONFIG's region; the
		// instance file's key is read in agentMain).
		c.ConfigServer = getenv("config_server_address")
		if c.ConfigServer != "" && f.logtailMode {
			c.Output = "sls"
		}
	}
	if c.ConfigDir == "" && c.ConfigServer == "" && f.instancePath != "" {
		return f, nil // agentMain takes config_server_address from the file
	}
	return f, c.Validate()
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

func runAgent(args []string, getenv func(string) string, stdoutW, stderr io.Writer) int {
	// The Logtail environment (ALIYUN_LOGTAIL_CONFIG, aliyun_logs_*): what
	// it means, read once; its notices are logged below.
	lenv, err := logtail.Read(environ(getenv), fileExists)
	if err != nil {
		fmt.Fprintf(stderr, "sluice-agent: %v\n", err)
		return 2
	}
	getenv = lenv.Getenv
	f, err := parseRunFlags(args, getenv, stdoutW)
	if err != nil {
		return cli.Exit("sluice-agent", err, stderr)
	}
	log, err := newLogger(f.logFormat, f.logLevel, stderr)
	if err != nil {
		return cli.Exit("sluice-agent", cli.Usage(err), stderr)
	}
	lenv.Log(log)
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			log.Error("cannot write the CPU profile", "err", err)
			return 1
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			log.Error("cannot start the CPU profile", "err", err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); _ = pf.Close() }()
	}
	if err := agentMain(f, getenv, stdoutW, log); err != nil {
		log.Error("sluice-agent stopped with an error", "err", err)
		return 1
	}
	return 0
}

// agentMain loads the instance config and runs the agent until SIGTERM or
// SIGINT (agent/app says what the stop does).
func agentMain(f *runFlags, getenv func(string) string, stdoutW io.Writer, log *slog.Logger) error {
	inst, err := logconfig.LoadInstance(f.instancePath, getenv)
	if err != nil {
		return fmt.Errorf("instance config: %w", err)
	}
	f.cfg.Instance = inst
	if f.cfg.ConfigDir == "" && f.cfg.ConfigServer == "" {
		f.cfg.ConfigServer = inst.ConfigServerAddress
		if f.cfg.ConfigServer != "" && f.logtailMode {
			f.cfg.Output = "sls"
		}
		if err := f.cfg.Validate(); err != nil {
			return err
		}
	}
	if f.cfg.ConfigServer != "" {
		if f.cfg.AllowedRoots, err = configclient.AllowedRootsFromInstance(inst, getenv); err != nil {
			return err
		}
	}
	agent, err := app.New(f.cfg, app.Settings{Logger: log, Stdout: stdoutW, Version: agentVersion()})
	if err != nil {
		return err
	}
	// Signals are caught from here on: one arriving while Start waits for
	// the pod list begins the stop as soon as Run runs.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if err := agent.Start(context.Background()); err != nil {
		return err
	}
	writeAppInfo(inst, f.cfg.ConfigServer, log)
	return agent.Run(context.Background(), sigs)
}

// writeAppInfo writes Logtail's app_info.json where the image has it (the
// guides read it with kubectl exec … cat); elsewhere there is nothing to do.
func writeAppInfo(inst *logconfig.Instance, server string, log *slog.Logger) {
	if _, err := os.Lstat(logtail.AppInfoPath); err != nil {
		return
	}
	host, _ := os.Hostname()
	info := logtail.NewAppInfo(agentVersion(), host, outboundIP(), host, inst.UserDefinedIDs, server, time.Now())
	if err := info.Write(logtail.AppInfoPath); err != nil {
		log.Warn("cannot write app_info.json", "path", logtail.AppInfoPath, "err", err)
	}
}

// outboundIP is the first non-loopback IPv4 address of the host ("" if none).
func outboundIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// environ lists the variables getenv knows: the process's, or (tests) the
// names os.Environ has, answered by getenv.
func environ(getenv func(string) string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		out = append(out, k+"="+getenv(k))
	}
	return out
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// runApplets lists the Logtail names, or (--install ROOT) links them to
// /sluice-agent under ROOT, as the image build does.
func runApplets(args []string, stdoutW, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		for _, a := range logtail.Applets {
			fmt.Fprintf(stdoutW, "%-36s %s\n", a.Path, a.Usage)
		}
		return 0
	case len(args) == 2 && args[0] == "--install":
		if err := logtail.InstallLinks(args[1], "/sluice-agent"); err != nil {
			fmt.Fprintf(stderr, "sluice-agent applets: %v\n", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(stderr, "usage: sluice-agent applets [--install ROOT]")
	return 2
}

// agentVersion is the module version the binary was built from.
func agentVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

func runStatus(args []string, getenv func(string) string, stdoutW, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-agent status", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage) }
	addr := fs.String("addr", logtail.HTTPListen(getenv), "")
	asJSON := fs.Bool("json", false, "")
	timeout := fs.Duration("timeout", 5*time.Second, "")
	if err := cli.Parse(fs, args, stdoutW); err != nil {
		return cli.Exit("sluice-agent", err, stderr)
	}
	if fs.NArg() > 0 {
		return cli.Exit("sluice-agent", cli.Usagef("status: unexpected arguments %q", fs.Args()), stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	st, err := app.FetchStatus(ctx, *addr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice-agent status: %v\n", err)
		return 1
	}
	if *asJSON {
		if err := app.WriteStatusJSON(stdoutW, st); err != nil {
			return 1
		}
	} else {
		app.WriteStatusText(stdoutW, st)
	}
	if !st.Healthy {
		return 1
	}
	return 0
}
