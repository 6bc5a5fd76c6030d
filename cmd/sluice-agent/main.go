// Command sluice-agent is the Sluice log collector: it tails the files named
// by the Logtail collection configs in a directory and sends their events to
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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/time/rate"

	"github.com/sluicelog/sluice/agent/buffer"
	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/configserver"
	"github.com/sluicelog/sluice/agent/input/container"
	"github.com/sluicelog/sluice/agent/input/file"
	"github.com/sluicelog/sluice/agent/kube"
	outfile "github.com/sluicelog/sluice/agent/output/file"
	"github.com/sluicelog/sluice/agent/output/null"
	"github.com/sluicelog/sluice/agent/output/sls"
	"github.com/sluicelog/sluice/agent/output/stdout"
	agentrt "github.com/sluicelog/sluice/agent/runtime"
	"github.com/sluicelog/sluice/logconfig"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const usage = `sluice-agent — log collector (Logtail-compatible configs)

Usage:
  sluice-agent [run] --config-dir DIR [flags]   collect until SIGTERM/SIGINT
  sluice-agent [run] --config-server ADDR [flags]  … with configs from the server's machine groups
  sluice-agent status [--addr HOST:PORT]        ask a running agent; exit 0 healthy, 1 not
                                                (usable as a Kubernetes liveness probe)

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
  --ignore-device         match checkpoints by inode and file signature only, not the device id:
                          for logs on PV/NAS volumes (shared-PVC mode) whose device id changes
                          when the agent pod moves (env SLUICE_IGNORE_DEVICE=true)
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
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdoutW, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runAgent(args, getenv, stdoutW, stderr)
	case "status":
		return runStatus(args, stdoutW, stderr)
	case "help":
		fmt.Fprint(stdoutW, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sluice-agent: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

type runFlags struct {
	configDir, output, instancePath, httpListen string
	stopDelay, shutdownTimeout                  time.Duration
	ignoreDevice                                bool
	configPoll, filePoll                        time.Duration
	configServer                                string
	heartbeatInterval                           time.Duration
	logFormat, logLevel, cpuProfile             string
	// Container collection (DaemonSet, serverless stdout volume).
	kubeNode, kubeconfig     string
	stdoutRoot, stdoutLayout string
	hostRoot, kubeletRoot    string
	kubeSyncTimeout          time.Duration
}

func parseRunFlags(args []string, getenv func(string) string, stderr io.Writer) (*runFlags, error) {
	f := &runFlags{}
	fs := flag.NewFlagSet("sluice-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	def := func(env, d string) string {
		if v := getenv(env); v != "" {
			return v
		}
		return d
	}
	fs.StringVar(&f.configDir, "config-dir", getenv("SLUICE_CONFIG_DIR"), "")
	fs.StringVar(&f.output, "output", def("SLUICE_OUTPUT", "stdout"), "")
	fs.StringVar(&f.instancePath, "instance-config", getenv(logconfig.EnvConfigPath), "")
	fs.StringVar(&f.httpListen, "http-listen", "127.0.0.1:7953", "")
	fs.DurationVar(&f.stopDelay, "stop-delay", 10*time.Second, "")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 20*time.Second, "")
	fs.BoolVar(&f.ignoreDevice, "ignore-device", getenv("SLUICE_IGNORE_DEVICE") == "true", "")
	fs.DurationVar(&f.configPoll, "config-poll", time.Second, "")
	fs.DurationVar(&f.filePoll, "file-poll", 500*time.Millisecond, "")
	fs.StringVar(&f.configServer, "config-server", getenv("SLUICE_CONFIG_SERVER"), "")
	fs.DurationVar(&f.heartbeatInterval, "heartbeat-interval", 10*time.Second, "")
	fs.StringVar(&f.logFormat, "log-format", "text", "")
	fs.StringVar(&f.logLevel, "log-level", "info", "")
	fs.StringVar(&f.cpuProfile, "cpu-profile", "", "")
	fs.StringVar(&f.kubeNode, "kube-node", getenv("NODE_NAME"), "")
	fs.StringVar(&f.kubeconfig, "kubeconfig", getenv("KUBECONFIG"), "")
	fs.DurationVar(&f.kubeSyncTimeout, "kube-sync-timeout", 30*time.Second, "")
	fs.StringVar(&f.stdoutRoot, "stdout-root", getenv("SLUICE_STDOUT_ROOT"), "")
	fs.StringVar(&f.stdoutLayout, "stdout-layout", def("SLUICE_STDOUT_LAYOUT", container.LayoutPods), "")
	fs.StringVar(&f.hostRoot, "host-root", getenv("SLUICE_HOST_ROOT"), "")
	fs.StringVar(&f.kubeletRoot, "kubelet-root", getenv("SLUICE_KUBELET_ROOT"), "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: every setting is a --flag (see --help)", fs.Args())
	}
	if f.configDir == "" && f.configServer == "" {
		return nil, errors.New("--config-dir is required: the directory holding the collection configs (*.json), unless configs come from --config-server")
	}
	if f.heartbeatInterval <= 0 {
		return nil, errors.New("--heartbeat-interval must be > 0, e.g. 10s")
	}
	if f.stopDelay < 0 || f.shutdownTimeout <= 0 {
		return nil, errors.New("--stop-delay must be ≥ 0 and --shutdown-timeout > 0")
	}
	return f, nil
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
	f, err := parseRunFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice-agent: %v\n", err)
		return 2
	}
	log, err := newLogger(f.logFormat, f.logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice-agent: %v\n", err)
		return 2
	}
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

func agentMain(f *runFlags, getenv func(string) string, stdoutW io.Writer, log *slog.Logger) error {
	inst, err := logconfig.LoadInstance(f.instancePath, getenv)
	if err != nil {
		return fmt.Errorf("instance config: %w", err)
	}
	reg := prometheus.NewRegistry()
	if err := registerAll(reg, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return err
	}

	store, err := checkpoint.New(checkpoint.Config{
		Path:     inst.CheckPointFilename,
		Interval: time.Duration(inst.CheckPointDumpInterval) * time.Second,
	}, checkpoint.Settings{Logger: log.With("component", "checkpoint"), Registerer: reg})
	if err != nil {
		return err
	}
	if err := store.Start(context.Background()); err != nil {
		return err
	}
	defer func() {
		// Runs after every input stopped: the final positions reach disk
		// even when the shutdown deadline passed.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := store.Shutdown(ctx); err != nil {
			log.Error("final checkpoint not written; the last seconds of logs will be read again", "err", err)
		}
	}()

	outputs, shared, err := buildOutputs(f.output, inst, stdoutW, reg, log)
	if err != nil {
		return err
	}
	if shared != nil {
		if err := shared.Start(context.Background()); err != nil {
			return fmt.Errorf("start output: %w", err)
		}
	}

	containerOpts := agentrt.ContainerOptions{
		StdoutRoot: f.stdoutRoot, StdoutLayout: f.stdoutLayout,
		HostRoot: f.hostRoot, KubeletRoot: f.kubeletRoot,
	}
	if f.kubeNode != "" {
		// Without API access the agent still collects (stdout tagged from log
		// paths); only dockerFile configs need the metadata and say so.
		if pods, err := startPodWatcher(f, reg, log); err != nil {
			log.Error("no pod metadata: container logs are tagged from their paths and dockerFile configs are refused", "err", err)
		} else {
			defer pods.Shutdown(context.Background())
			containerOpts.Metadata = pods
		}
	}

	hostname, _ := os.Hostname()
	factory, err := agentrt.NewPipelineFactory(agentrt.FactoryOptions{
		Container:    containerOpts,
		Instance:     inst,
		Checkpoints:  store,
		Outputs:      outputs,
		Hostname:     hostname,
		IgnoreDevice: f.ignoreDevice,
		FileTuning:   file.Config{PollInterval: f.filePoll},
		Logger:       log,
		Registerer:   reg,
	})
	if err != nil {
		return err
	}
	agent, err := agentrt.New(agentrt.Options{
		ConfigDir:       f.configDir,
		PollInterval:    f.configPoll,
		ShutdownTimeout: f.shutdownTimeout,
		Factory:         factory,
		Logger:          log,
		Registerer:      reg,
		Gatherer:        reg,
	})
	if err != nil {
		return err
	}

	adminCtx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	if f.httpListen != "" {
		addr, _, err := agentrt.ServeAdmin(adminCtx, f.httpListen, agentrt.AdminHandler(agent, reg))
		if err != nil {
			return err
		}
		log.Info("status and metrics", "addr", addr.String(), "paths", "/healthz /status /metrics")
	}

	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	centralDone := make(chan struct{})
	if f.configServer != "" {
		client, err := newConfigClient(f, inst, getenv, agent, reg, log)
		if err != nil {
			return err
		}
		agent.SetCentralStatus(func() agentrt.CentralStatus {
			// Connection, not Status: Status asks the agent for its
			// status, which calls this hook again.
			cs := client.Connection()
			st := agentrt.CentralStatus{Server: cs.Server, LastError: cs.LastError}
			if !cs.LastSuccess.IsZero() {
				st.LastSuccess = cs.LastSuccess.Format(time.RFC3339)
			}
			return st
		})
		go func() {
			defer close(centralDone)
			if err := client.Run(runCtx); err != nil {
				log.Error("central config stopped; local configs keep collecting", "err", err)
			}
		}()
	} else {
		close(centralDone)
	}
	stopCtx, abortStop := context.WithCancel(context.Background())
	defer abortStop()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		sig := <-sigs
		if f.stopDelay > 0 {
			log.Info("signal received; still collecting during the stop delay", "signal", sig.String(), "stop_delay", f.stopDelay)
			select {
			case <-time.After(f.stopDelay):
			case sig = <-sigs:
				log.Warn("second signal; skipping the stop delay and the delivery wait", "signal", sig.String())
				abortStop()
			}
		}
		log.Info("stopping: inputs stop reading, outputs deliver what was read, checkpoints are saved", "shutdown_timeout", f.shutdownTimeout)
		time.AfterFunc(f.shutdownTimeout, abortStop)
		stopRun()
		select {
		case sig = <-sigs:
			log.Warn("second signal; not waiting for delivery (undelivered lines are read again after restart)", "signal", sig.String())
			abortStop()
		case <-stopCtx.Done():
		}
	}()

	log.Info("sluice-agent started", "config_dir", f.configDir, "output", f.output,
		"checkpoint", inst.CheckPointFilename, "ignore_device", f.ignoreDevice, "config_server", f.configServer)
	stopErr := agent.Run(runCtx, stopCtx)
	<-centralDone
	if shared != nil {
		if err := shared.Shutdown(stopCtx); err != nil {
			stopErr = errors.Join(stopErr, fmt.Errorf("stop output: %w", err))
		}
	}
	if stopCtx.Err() != nil && stopErr != nil {
		return fmt.Errorf("stopped before everything read was delivered (it is read again after restart): %w", stopErr)
	}
	if stopErr != nil {
		return stopErr
	}
	log.Info("sluice-agent stopped")
	return nil
}

// newConfigClient builds the central config client (agent/configserver)
// from the flags and the instance config.
func newConfigClient(f *runFlags, inst *logconfig.Instance, getenv func(string) string, agent *agentrt.Agent, reg prometheus.Registerer, log *slog.Logger) (*configserver.Client, error) {
	roots, err := configserver.AllowedRootsFromInstance(inst, getenv)
	if err != nil {
		return nil, err
	}
	hostname, _ := os.Hostname()
	return configserver.New(configserver.Config{
		Endpoint:         f.configServer,
		AccessKeyID:      inst.AccessKeyID,
		AccessKeySecret:  inst.AccessKeySecret,
		Interval:         f.heartbeatInterval,
		CachePath:        inst.UserConfigFilePath,
		IP:               machineIP(),
		Hostname:         hostname,
		UserDefinedIDs:   inst.UserDefinedIDs,
		Version:          agentVersion(),
		AllowedRoots:     roots,
		AllowedEndpoints: inst.Endpoints(),
		TLS:              inst.TLS,
	}, configserver.Settings{Logger: log.With("component", "configserver"), Registerer: reg}, agent)
}

// agentVersion is the module version the binary was built from.
func agentVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// buildOutputs returns the provider pipelines get their output from and,
// for outputs shared by every config, the output itself (started and stopped
// here, around the agent).
func buildOutputs(spec string, inst *logconfig.Instance, stdoutW io.Writer, reg prometheus.Registerer, log *slog.Logger) (agentrt.OutputProvider, agentrt.Output, error) {
	source := machineIP()
	kind, arg, _ := strings.Cut(spec, ":")
	var out agentrt.Output
	var err error
	switch kind {
	case "stdout":
		out, err = stdout.New(stdout.Config{Source: source}, stdout.Settings{Writer: stdoutW, Registerer: reg})
	case "file":
		if arg == "" {
			return nil, nil, errors.New("--output file:PATH: give the file to append JSON lines to, e.g. file:/var/log/sluice/out.jsonl")
		}
		out, err = outfile.New(outfile.Config{Path: arg, Source: source}, outfile.Settings{Logger: log.With("component", "output"), Registerer: reg})
	case "null":
		out, err = null.New(null.Settings{Registerer: reg})
	case "sls":
		return slsOutputs(inst, reg, log), nil, nil
	default:
		return nil, nil, fmt.Errorf("--output %q: use stdout, file:PATH, null or sls", spec)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--output %s: %w", spec, err)
	}
	return agentrt.SharedOutput{Out: out}, out, nil
}

func slsOutputs(inst *logconfig.Instance, reg prometheus.Registerer, log *slog.Logger) agentrt.OutputProvider {
	endpoint := func(c *logconfig.Config) (string, error) {
		if c.OutputDetail.Endpoint != "" {
			return c.OutputDetail.Endpoint, nil
		}
		if eps := inst.Endpoints(); len(eps) > 0 {
			return eps[0], nil
		}
		return "", errors.New("no Log Service endpoint: set data_server_list or config_server_address in the instance config (--instance-config), or outputDetail.endpoint")
	}
	// max_bytes_per_sec bounds what the whole agent sends (raw bytes),
	// across every logstore, as in Logtail.
	sendRate := rate.NewLimiter(rate.Limit(inst.MaxBytesPerSec), int(inst.MaxBytesPerSec))
	// buffer_file_num bounds the disk buffer of the whole agent, too.
	bufferQuota := buffer.NewQuota(inst.BufferFileNum)
	return &agentrt.OutputsByKey{
		Key: func(c *logconfig.Config) (string, error) {
			ep, err := endpoint(c)
			if err != nil {
				return "", err
			}
			if c.OutputDetail.ProjectName == "" || c.OutputDetail.LogstoreName == "" {
				return "", fmt.Errorf("config %q: outputDetail.projectName and outputDetail.logstoreName are required with --output sls", c.ConfigName)
			}
			return ep + "/" + c.OutputDetail.ProjectName + "/" + c.OutputDetail.LogstoreName, nil
		},
		New: func(c *logconfig.Config) (agentrt.Output, error) {
			ep, err := endpoint(c)
			if err != nil {
				return nil, err
			}
			d := c.OutputDetail
			cfg := sls.Config{
				Endpoint:           ep,
				Project:            d.ProjectName,
				Logstore:           d.LogstoreName,
				AccessKeyID:        inst.AccessKeyID,
				AccessKeySecret:    inst.AccessKeySecret,
				InsecureSkipVerify: inst.TLS.InsecureSkipVerify,
				Compression:        d.CompressType,
				DeadLetterDir:      inst.BufferFilePath + "/dead-letter/" + d.ProjectName + "/" + d.LogstoreName,
			}
			if ls := c.InputDetail.LocalStorage; ls == nil || *ls {
				cfg.BufferDir = inst.BufferFilePath + "/" + d.ProjectName + "/" + d.LogstoreName
				cfg.BufferMaxFiles = inst.BufferFileNum
				cfg.BufferMaxFileSize = inst.BufferFileSize
			}
			return sls.New(cfg, sls.Settings{Logger: log.With("component", "output", "logstore", d.ProjectName+"/"+d.LogstoreName), Registerer: reg, SendRate: sendRate, BufferQuota: bufferQuota})
		},
	}
}

// machineIP is __source__: the first non-loopback IPv4 address, as Logtail
// reports it.
func machineIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "127.0.0.1"
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return "127.0.0.1"
}

func runStatus(args []string, stdoutW, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-agent status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	addr := fs.String("addr", "127.0.0.1:7953", "")
	asJSON := fs.Bool("json", false, "")
	timeout := fs.Duration("timeout", 5*time.Second, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	st, err := agentrt.FetchStatus(ctx, *addr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice-agent status: %v\n", err)
		return 1
	}
	if *asJSON {
		if err := agentrt.WriteStatusJSON(stdoutW, st); err != nil {
			return 1
		}
	} else {
		agentrt.WriteStatusText(stdoutW, st)
	}
	if !st.Healthy {
		return 1
	}
	return 0
}

// startPodWatcher watches the pods of this node for container metadata
// (DaemonSet mode). A slow API server does not hold collection back: lines
// read before the cache syncs carry what their paths tell and are not dropped.
func startPodWatcher(f *runFlags, reg prometheus.Registerer, log *slog.Logger) (*kube.PodWatcher, error) {
	var (
		cfg *rest.Config
		err error
	)
	if f.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("--kube-node %s: no Kubernetes API access (in-cluster service account or --kubeconfig): %w", f.kubeNode, err)
	}
	client, err := kube.NewCoreClient(cfg)
	if err != nil {
		return nil, err
	}
	w, err := kube.NewPodWatcher(client, kube.WatcherConfig{NodeName: f.kubeNode}, kube.Settings{Logger: log.With("component", "kube"), Registerer: reg})
	if err != nil {
		return nil, err
	}
	if err := w.Start(context.Background()); err != nil {
		return nil, fmt.Errorf("watch pods of node %s: %w", f.kubeNode, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.kubeSyncTimeout)
	defer cancel()
	if err := w.WaitForSync(ctx); err != nil {
		log.Warn("pod metadata not synced yet; collecting anyway, tags from log paths until it is", "node", f.kubeNode, "err", err)
	} else {
		log.Info("watching pods", "node", f.kubeNode)
	}
	return w, nil
}
