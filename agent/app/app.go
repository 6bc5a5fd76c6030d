// Package app assembles sluice-agent from its components, as the
// OpenTelemetry Collector's service does: the checkpoint store, the outputs
// (made by the factory --output names, see DefaultOutputs), the pod watcher,
// the pipeline factory and supervisor (agent/supervisor), the central config
// client (agent/configclient) and the status/metrics endpoints. Components
// that others depend on start first and stop last; what runs until the
// agent stops (the config loop, the central config client, the stop signal
// handler) runs as actors of one run group (github.com/oklog/run, as
// Prometheus' main), so any of them ending stops the others.
//
// cmd/sluice-agent is a thin main around it (flags and environment to a
// Config); tests run the same assembly in-process:
//
//	a, err := app.New(app.Config{ConfigDir: dir, Output: "file:" + out}, app.Settings{})
//	go func() { done <- a.Run(ctx, nil) }() // cancel ctx to stop
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/configclient"
	"github.com/sluicelog/sluice/agent/input/file"
	"github.com/sluicelog/sluice/agent/kube"
	"github.com/sluicelog/sluice/agent/supervisor"
	"github.com/sluicelog/sluice/logconfig"
)

// Config is what a user sets (flags, environment, the instance config).
type Config struct {
	// ConfigDir holds one collection config per *.json file, re-read every
	// ConfigPoll (default 1s). Optional with ConfigServer.
	ConfigDir  string
	ConfigPoll time.Duration
	// Output is where events go: KIND or KIND:ARG of an output factory
	// (default "stdout").
	Output string
	// Instance is the instance config (ilogtail_config.json keys);
	// logconfig.NewDefaultInstance() when nil.
	Instance *logconfig.Instance
	// CheckpointInterval is how often checkpoints are saved; zero means the
	// instance's check_point_dump_interval.
	CheckpointInterval time.Duration
	// HTTPListen serves /healthz, /status and /metrics ("" disables).
	HTTPListen string
	// StopDelay: after the stop signal, keep collecting this long so the
	// lines an app writes while it stops get out.
	StopDelay time.Duration
	// ShutdownTimeout bounds, after the stop delay, the wait for outputs to
	// deliver what was read (default 20s); it also bounds one pipeline's
	// stop when its config is replaced.
	ShutdownTimeout time.Duration
	// IgnoreDevice matches checkpoints by inode and signature only (PV/NAS
	// volumes whose device id changes when the pod moves).
	IgnoreDevice bool
	// FilePoll is how often log directories and files are checked (file
	// input default when zero).
	FilePoll time.Duration
	// ConfigServer is the sluice-server whose machine groups' configs the
	// agent collects (host:port or URL; "" for local configs only),
	// heartbeating every HeartbeatInterval (default 10s).
	ConfigServer      string
	HeartbeatInterval time.Duration
	// AllowedRoots are the directories server configs may read; nil means
	// configclient.DefaultAllowedRoots.
	AllowedRoots []string
	// Kube: container metadata from the API server (DaemonSet mode).
	Kube KubeConfig
	// Container locates container logs on the node.
	Container ContainerConfig
}

// KubeConfig configures the pod watcher.
type KubeConfig struct {
	// Node is the node whose pods are watched ("" watches none: container
	// logs are tagged from their paths and dockerFile configs are refused).
	Node string
	// Kubeconfig is for API access outside a cluster; "" uses the in-cluster
	// service account.
	Kubeconfig string
	// SyncTimeout bounds the wait for the first list of pods at start
	// (default 30s); collection starts anyway after it.
	SyncTimeout time.Duration
}

// ContainerConfig locates container logs (see supervisor.ContainerOptions).
type ContainerConfig struct {
	StdoutRoot, StdoutLayout string
	HostRoot, KubeletRoot    string
}

// Validate reports settings that cannot work, naming the flag to fix.
func (c *Config) Validate() error {
	var errs []error
	if c.ConfigDir == "" && c.ConfigServer == "" {
		errs = append(errs, errors.New("--config-dir is required: the directory holding the collection configs (*.json), unless configs come from --config-server"))
	}
	if c.HeartbeatInterval < 0 {
		errs = append(errs, errors.New("--heartbeat-interval must be > 0, e.g. 10s"))
	}
	if c.StopDelay < 0 || c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("--stop-delay must be ≥ 0 and --shutdown-timeout > 0"))
	}
	return errors.Join(errs...)
}

// Settings is what users never configure: where logs, metrics and stdout
// go, the machine's identity and the output kinds.
type Settings struct {
	// Logger (nil discards).
	Logger *slog.Logger
	// Registerer and Gatherer: where metrics go and what /metrics serves.
	// Nil: a private registry with the Go and process collectors.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Stdout is where the stdout output writes (os.Stdout when nil).
	Stdout io.Writer
	// Outputs are the output kinds Config.Output chooses from
	// (DefaultOutputs when nil).
	Outputs []OutputFactory
	// Hostname and IP identify the machine (__hostname__, __source__, the
	// config server's machine registry); empty: the OS hostname and the
	// first non-loopback IPv4 address.
	Hostname, IP string
	// Version is reported to the config server ("devel" when empty).
	Version string
	// ManualHeartbeats leaves heartbeats to the caller
	// (ConfigClient().Heartbeat), so a test decides when configs arrive.
	ManualHeartbeats bool
}

// Agent is an assembled sluice-agent: built by New, started once by Start,
// then run by Run.
type Agent struct {
	cfg Config
	log *slog.Logger
	reg prometheus.Registerer

	checkpoints *checkpoint.Store
	outputs     Outputs
	pods        *kube.PodWatcher // nil without --kube-node or API access
	runtime     *supervisor.Agent
	client      *configclient.Client // nil without ConfigServer
	admin       *adminServer         // nil without HTTPListen
	manualBeats bool

	mu sync.Mutex
	// startCalled: Start ran (an agent starts once); started: it
	// succeeded; ran: Run ran.
	startCalled, started, ran bool
	stops                     []func() // what Start started, stopped in reverse by Run
	stopCtx                   context.Context
	outputErr                 error // a shared output's failed stop
}

// New validates cfg and builds every component; nothing runs and no file
// or port is opened until Start.
func New(cfg Config, set Settings) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Output == "" {
		cfg.Output = "stdout"
	}
	if cfg.Instance == nil {
		cfg.Instance = logconfig.NewDefaultInstance()
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 20 * time.Second
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 10 * time.Second
	}
	if cfg.Kube.SyncTimeout == 0 {
		cfg.Kube.SyncTimeout = 30 * time.Second
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = time.Duration(cfg.Instance.CheckPointDumpInterval) * time.Second
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if set.Registerer == nil {
		reg := prometheus.NewRegistry()
		if err := registerAll(reg, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, err
		}
		set.Registerer, set.Gatherer = reg, reg
	}
	if set.Stdout == nil {
		set.Stdout = os.Stdout
	}
	if set.Outputs == nil {
		set.Outputs = DefaultOutputs()
	}
	if set.Hostname == "" {
		set.Hostname, _ = os.Hostname()
	}
	if set.IP == "" {
		set.IP = machineIP()
	}
	if set.Version == "" {
		set.Version = "devel"
	}
	inst := cfg.Instance
	a := &Agent{cfg: cfg, log: log, reg: set.Registerer, manualBeats: set.ManualHeartbeats, stopCtx: context.Background()}

	var err error
	a.checkpoints, err = checkpoint.New(checkpoint.Config{Path: inst.CheckPointFilename, Interval: cfg.CheckpointInterval},
		checkpoint.Settings{Logger: log.With("component", "checkpoint"), Registerer: set.Registerer})
	if err != nil {
		return nil, err
	}
	a.outputs, err = createOutputs(set.Outputs, cfg.Output, OutputSettings{
		Instance: inst, Source: set.IP, Stdout: set.Stdout, Logger: log, Registerer: set.Registerer,
	})
	if err != nil {
		return nil, err
	}
	containers := supervisor.ContainerOptions{
		StdoutRoot: cfg.Container.StdoutRoot, StdoutLayout: cfg.Container.StdoutLayout,
		HostRoot: cfg.Container.HostRoot, KubeletRoot: cfg.Container.KubeletRoot,
	}
	if cfg.Kube.Node != "" {
		// Without API access the agent still collects (stdout tagged from
		// log paths); only dockerFile configs need the metadata and say so.
		if a.pods, err = newPodWatcher(cfg.Kube, set.Registerer, log); err != nil {
			log.Error("no pod metadata: container logs are tagged from their paths and dockerFile configs are refused", "err", err)
		} else {
			containers.Metadata = a.pods
		}
	}
	factory, err := supervisor.NewPipelineFactory(supervisor.FactoryOptions{
		Container:    containers,
		Instance:     inst,
		Checkpoints:  a.checkpoints,
		Outputs:      a.outputs.Provider,
		Hostname:     set.Hostname,
		IgnoreDevice: cfg.IgnoreDevice,
		FileTuning:   file.Config{PollInterval: cfg.FilePoll},
		Logger:       log,
		Registerer:   set.Registerer,
	})
	if err != nil {
		return nil, err
	}
	a.runtime, err = supervisor.New(supervisor.Options{
		ConfigDir:       cfg.ConfigDir,
		PollInterval:    cfg.ConfigPoll,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Factory:         factory,
		Logger:          log,
		Registerer:      set.Registerer,
		Gatherer:        set.Gatherer,
	})
	if err != nil {
		return nil, err
	}
	if cfg.ConfigServer != "" {
		if a.client, err = a.newConfigClient(set); err != nil {
			return nil, err
		}
		client := a.client
		a.runtime.SetCentralStatus(func() supervisor.CentralStatus {
			// Connection, not Status: Status asks the agent for its
			// status, which calls this hook again.
			cs := client.Connection()
			st := supervisor.CentralStatus{Server: cs.Server, LastError: cs.LastError}
			if !cs.LastSuccess.IsZero() {
				st.LastSuccess = cs.LastSuccess.Format(time.RFC3339)
			}
			return st
		})
	}
	if cfg.HTTPListen != "" {
		a.admin = newAdminServer(cfg.HTTPListen, AdminHandler(a.runtime, set.Gatherer))
	}
	return a, nil
}

// newConfigClient builds the central config client from the config and the
// instance config.
func (a *Agent) newConfigClient(set Settings) (*configclient.Client, error) {
	inst := a.cfg.Instance
	roots := a.cfg.AllowedRoots
	if roots == nil {
		roots = append([]string(nil), configclient.DefaultAllowedRoots...)
	}
	interval := a.cfg.HeartbeatInterval
	if set.ManualHeartbeats {
		interval = time.Hour // never used: Run does not heartbeat
	}
	return configclient.New(configclient.Config{
		Endpoint:         a.cfg.ConfigServer,
		AccessKeyID:      inst.AccessKeyID,
		AccessKeySecret:  inst.AccessKeySecret,
		Interval:         interval,
		CachePath:        inst.UserConfigFilePath,
		IP:               set.IP,
		Hostname:         set.Hostname,
		UserDefinedIDs:   inst.UserDefinedIDs,
		Version:          set.Version,
		AllowedRoots:     roots,
		AllowedEndpoints: inst.Endpoints(),
		TLS:              inst.TLS,
	}, configclient.Settings{Logger: a.log.With("component", "configserver"), Registerer: a.reg}, a.runtime)
}

// Runtime is the agent's config runtime (status, applied configs).
func (a *Agent) Runtime() *supervisor.Agent { return a.runtime }

// ConfigClient is the central config client (nil without ConfigServer).
func (a *Agent) ConfigClient() *configclient.Client { return a.client }

// AdminAddr is the address /healthz, /status and /metrics are served on
// (nil before Run listens, or without HTTPListen).
func (a *Agent) AdminAddr() net.Addr {
	if a.admin == nil {
		return nil
	}
	return a.admin.Addr()
}

// Start starts the components the pipelines depend on, downstream first:
// the checkpoint store, a shared output, the pod watcher (waiting up to
// Kube.SyncTimeout for the first list of pods), the status endpoints and,
// with ManualHeartbeats, the central config cache. It returns the first
// error (a port in use, an output file that cannot be opened), having
// stopped what it started. Run does the rest.
func (a *Agent) Start(ctx context.Context) (err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.startCalled {
		return errors.New("app: an Agent starts once; build another with New")
	}
	a.startCalled = true
	defer func() {
		if err != nil {
			a.stopComponents()
			return
		}
		a.started = true
	}()
	if err := a.checkpoints.Start(ctx); err != nil {
		return err
	}
	a.stops = append(a.stops, func() {
		// Runs after every input stopped: the final positions reach disk
		// even when the shutdown deadline passed.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.checkpoints.Shutdown(ctx); err != nil {
			a.log.Error("final checkpoint not written; the last seconds of logs will be read again", "err", err)
		}
	})
	if out := a.outputs.Shared; out != nil {
		if err := out.Start(ctx); err != nil {
			return fmt.Errorf("start output: %w", err)
		}
		a.stops = append(a.stops, func() {
			if err := out.Shutdown(a.stopCtx); err != nil {
				a.outputErr = fmt.Errorf("stop output: %w", err)
			}
		})
	}
	if a.pods != nil {
		a.startPodWatcher()
		a.stops = append(a.stops, func() { _ = a.pods.Shutdown(context.Background()) })
	}
	if a.admin != nil {
		if err := a.admin.Start(); err != nil {
			return err
		}
		a.stops = append(a.stops, a.admin.Shutdown)
		a.log.Info("status and metrics", "addr", a.admin.Addr().String(), "paths", "/healthz /status /metrics")
	}
	if a.client != nil && a.manualBeats {
		if err := a.client.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// stopComponents stops what Start started, in reverse order.
func (a *Agent) stopComponents() {
	for i := len(a.stops) - 1; i >= 0; i-- {
		a.stops[i]()
	}
	a.stops = nil
}

// Run runs a started agent until it is told to stop, then stops it
// gracefully. The first value from signals, or ctx ending, begins the stop:
// collection goes on for StopDelay, then inputs stop reading, outputs
// deliver what was read within ShutdownTimeout, checkpoints are saved and
// what Start started is stopped. A second signal skips the delay and the
// wait (what was delivered is still checkpointed; the rest is read again
// after a restart). signals may be nil. Run returns an error when what was
// read could not be delivered before the stop's deadline.
func (a *Agent) Run(ctx context.Context, signals <-chan os.Signal) (err error) {
	a.mu.Lock()
	ok := a.started && !a.ran
	a.ran = true
	a.mu.Unlock()
	if !ok {
		return errors.New("app: Run needs a started agent and runs once")
	}
	// stopCtx ends when the stop may no longer wait for delivery: after
	// ShutdownTimeout, or at a second signal.
	stopCtx, abortStop := context.WithCancel(context.Background())
	a.stopCtx = stopCtx
	defer abortStop()
	defer func() {
		a.stopComponents()
		err = errors.Join(err, a.outputErr)
	}()

	var (
		g       run.Group
		stopErr error
		// Watching for a second signal during the delivery wait ends with Run.
		watch   sync.WaitGroup
		runDone = make(chan struct{})
	)
	defer watch.Wait()
	defer close(runDone)
	// The stop: the first signal (or ctx) waits out the stop delay, a
	// second one during the delay or the delivery wait aborts it.
	{
		cancel := make(chan struct{})
		g.Add(func() error {
			var sig os.Signal
			select {
			case sig = <-signals:
			case <-ctx.Done():
			case <-cancel:
				return nil
			}
			a.waitStopDelay(sig, signals, abortStop)
			return nil
		}, func(error) {
			close(cancel)
			a.log.Info("stopping: inputs stop reading, outputs deliver what was read, checkpoints are saved", "shutdown_timeout", a.cfg.ShutdownTimeout)
			deadline := time.AfterFunc(a.cfg.ShutdownTimeout, abortStop)
			watch.Add(1)
			go func() {
				defer watch.Done()
				defer deadline.Stop()
				select {
				case sig := <-signals:
					a.log.Warn("second signal; not waiting for delivery (undelivered lines are read again after restart)", "signal", sig.String())
					abortStop()
				case <-stopCtx.Done():
				case <-runDone:
				}
			}()
		})
	}
	// The config loop: local configs applied until the stop, then every
	// pipeline drained within stopCtx.
	{
		runCtx, stopRun := context.WithCancel(context.Background())
		g.Add(func() error {
			stopErr = a.runtime.Run(runCtx, stopCtx)
			return nil
		}, func(error) { stopRun() })
	}
	// Central configs: a failing config server is logged, and local and
	// cached configs keep collecting.
	if a.client != nil && !a.manualBeats {
		clientCtx, stopClient := context.WithCancel(context.Background())
		g.Add(func() error {
			if err := a.client.Run(clientCtx); err != nil {
				a.log.Error("central config stopped; local configs keep collecting", "err", err)
			}
			<-clientCtx.Done()
			return nil
		}, func(error) { stopClient() })
	}

	a.log.Info("sluice-agent started", "config_dir", a.cfg.ConfigDir, "output", a.cfg.Output,
		"checkpoint", a.cfg.Instance.CheckPointFilename, "ignore_device", a.cfg.IgnoreDevice, "config_server", a.cfg.ConfigServer)
	_ = g.Run() // every actor returns nil; the stop's outcome is stopErr

	if stopCtx.Err() != nil && stopErr != nil {
		return fmt.Errorf("stopped before everything read was delivered (it is read again after restart): %w", stopErr)
	}
	if stopErr != nil {
		return stopErr
	}
	a.log.Info("sluice-agent stopped")
	return nil
}

// waitStopDelay keeps collecting for the stop delay after sig (nil: ctx
// ended); a second signal cuts it short and aborts the delivery wait too.
func (a *Agent) waitStopDelay(sig os.Signal, signals <-chan os.Signal, abortStop func()) {
	if a.cfg.StopDelay <= 0 {
		return
	}
	name := "context canceled"
	if sig != nil {
		name = sig.String()
	}
	a.log.Info("signal received; still collecting during the stop delay", "signal", name, "stop_delay", a.cfg.StopDelay)
	t := time.NewTimer(a.cfg.StopDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case sig = <-signals:
		a.log.Warn("second signal; skipping the stop delay and the delivery wait", "signal", sig.String())
		abortStop()
	}
}

// startPodWatcher starts watching the node's pods and waits up to
// SyncTimeout for the first list. A slow API server does not hold collection
// back: lines read before the cache syncs carry what their paths tell and
// are not dropped.
func (a *Agent) startPodWatcher() {
	_ = a.pods.Start(context.Background()) // never fails: the informer retries
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Kube.SyncTimeout)
	defer cancel()
	if err := a.pods.WaitForSync(ctx); err != nil {
		a.log.Warn("pod metadata not synced yet; collecting anyway, tags from log paths until it is", "node", a.cfg.Kube.Node, "err", err)
	} else {
		a.log.Info("watching pods", "node", a.cfg.Kube.Node)
	}
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
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
