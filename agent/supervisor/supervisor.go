// Package supervisor runs sluice-agent: it turns collection configs (local JSON
// files, and configs from the server's machine groups) into running
// pipelines, replaces a pipeline when its config changes, keeps the others
// running when one config is broken, and reports what it is doing through
// status and metrics.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Pipeline is one running collection config: input → parse → process →
// output. Start returns quickly; Shutdown stops reading, waits (until ctx
// ends) for what was read to be acknowledged and saves checkpoints.
type Pipeline interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// Factory turns a config's bytes into a pipeline that is not started yet.
// It returns the config name whenever it can be read, even with an error, so
// status can name the broken config.
type Factory interface {
	Build(data []byte) (name string, p Pipeline, err error)
}

// Forgetter is implemented by factories that keep state per config name
// (checkpoints): Forget is called once a removed config has stopped.
type Forgetter interface {
	Forget(name string)
}

// FactoryFunc adapts a function to Factory.
type FactoryFunc func(data []byte) (string, Pipeline, error)

// Build calls f(data).
func (f FactoryFunc) Build(data []byte) (string, Pipeline, error) { return f(data) }

// Options configure an Agent.
type Options struct {
	// ConfigDir holds one collection config per *.json file.
	ConfigDir string
	// PollInterval is how often ConfigDir is re-read (default 1s).
	PollInterval time.Duration
	// ShutdownTimeout bounds how long one pipeline may take to stop when it is
	// replaced (default 10s).
	ShutdownTimeout time.Duration
	Factory         Factory
	Logger          *slog.Logger
	Registerer      prometheus.Registerer
	// Gatherer, when set, lets status report lag and disk-buffer figures
	// from the components' metrics (usually the registry of Registerer).
	Gatherer prometheus.Gatherer
}

// ConfigState is the state of one collection config.
type ConfigState string

// Config states reported by status.
const (
	StateRunning ConfigState = "running"
	StateFailed  ConfigState = "failed"
)

// ConfigStatus is what the agent knows about one config.
type ConfigStatus struct {
	Name  string      `json:"name"`
	Path  string      `json:"path"`
	State ConfigState `json:"state"`
	// Message explains a failure; when an earlier version of the config is
	// still running, it says so.
	Message string    `json:"message,omitempty"`
	Since   time.Time `json:"since"`
	// Version is a short hash of the applied content.
	Version string `json:"version"`
	// Warnings are problems of a running config that lose nothing but are
	// easy to miss (a topicFormat path regex that matches no file).
	Warnings []string `json:"warnings,omitempty"`
}

// Warner is implemented by pipelines that can explain such problems.
type Warner interface {
	Warnings() []string
}

type running struct {
	name     string
	path     string
	hash     [32]byte
	pipeline Pipeline
}

// Agent owns the running pipelines.
type Agent struct {
	opts Options
	log  *slog.Logger

	// applyMu serializes applications; sources holds the last set of each
	// config source (ApplySource).
	applyMu sync.Mutex
	sources map[string][]ConfigFile
	stopped bool // StopAll ran: later applications start nothing

	mu       sync.Mutex
	byPath   map[string]*running // file path → pipeline built from it
	status   map[string]ConfigStatus
	seen     map[string][32]byte // path → last content hash tried (applied or failed)
	dirError error
	lastScan time.Time
	central  func() CentralStatus

	configs  *prometheus.GaugeVec
	applies  *prometheus.CounterVec
	scanTime prometheus.Gauge
}

// New returns an agent; Run starts it.
func New(opts Options) (*Agent, error) {
	if opts.Factory == nil {
		return nil, errors.New("supervisor: Options.Factory is required")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{
		opts:   opts,
		log:    log,
		byPath: map[string]*running{},
		status: map[string]ConfigStatus{},
		seen:   map[string][32]byte{},
		configs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_agent_configs", Help: "Collection configs by state (running, failed).",
		}, []string{"state"}),
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_agent_config_applies_total", Help: "Config applications by result (ok, error).",
		}, []string{"result"}),
		scanTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_agent_config_scan_timestamp_seconds", Help: "When the config directory was last read.",
		}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{a.configs, a.applies, a.scanTime} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("supervisor: register metrics: %w", err)
			}
		}
	}
	return a, nil
}

// Run applies the config directory until ctx ends, then stops every pipeline
// within stopCtx's deadline. It returns the first error of the final stop.
func (a *Agent) Run(ctx context.Context, stopCtx context.Context) error {
	a.Sync(ctx)
	t := time.NewTicker(a.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return a.StopAll(stopCtx)
		case <-t.C:
			a.Sync(ctx)
		}
	}
}

// Sync reads the config directory once and applies what changed. Without a
// ConfigDir (configs only from another source) there is nothing to read.
func (a *Agent) Sync(ctx context.Context) {
	if a.opts.ConfigDir == "" {
		a.mu.Lock()
		a.lastScan = time.Now()
		a.mu.Unlock()
		a.scanTime.SetToCurrentTime()
		return
	}
	files, err := ScanConfigDir(a.opts.ConfigDir)
	a.mu.Lock()
	a.lastScan = time.Now()
	prevErr := a.dirError
	a.dirError = err
	a.mu.Unlock()
	a.scanTime.SetToCurrentTime()
	if err != nil {
		// Keep what runs: a directory that disappears for a moment (ConfigMap
		// update, remount) must not stop collection.
		if prevErr == nil || prevErr.Error() != err.Error() {
			a.log.Error("cannot read config directory; running configs keep collecting", "err", err)
		}
		return
	}
	a.Apply(ctx, files)
}

// Apply makes the running pipelines of the config directory (source "")
// match files: new and changed files are (re)built, removed files stopped. A
// file that fails to build leaves the previous version of its config running
// and is reported in status.
func (a *Agent) Apply(ctx context.Context, files []ConfigFile) {
	a.ApplySource(ctx, "", files)
}

// ApplySource is Apply for one named source of configs (the config
// directory is "", the config server "configserver"): the configs of the
// other sources are left running. Paths identify configs across all
// sources, so each source must use its own (a source other than the
// directory should use paths no directory can have, e.g. "configserver:/name.json").
// It is safe to call from several goroutines.
func (a *Agent) ApplySource(ctx context.Context, source string, files []ConfigFile) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	if a.stopped {
		return
	}
	if a.sources == nil {
		a.sources = map[string][]ConfigFile{}
	}
	a.sources[source] = files
	names := make([]string, 0, len(a.sources))
	for n := range a.sources {
		names = append(names, n)
	}
	sort.Strings(names)
	var all []ConfigFile
	for _, n := range names {
		all = append(all, a.sources[n]...)
	}
	a.apply(ctx, all)
}

func (a *Agent) apply(ctx context.Context, files []ConfigFile) {
	present := make(map[string]bool, len(files))
	for _, f := range files {
		present[f.Path] = true
		a.mu.Lock()
		h, ok := a.seen[f.Path]
		a.mu.Unlock()
		// An error without a hash (an unreadable file) is retried on every
		// pass; an error with one is a verdict on that content (a config
		// server's refusal) and stands until the content changes.
		if ok && h == f.Hash && (f.Err == nil || f.Hash != [32]byte{}) {
			continue
		}
		a.applyFile(ctx, f)
	}
	a.mu.Lock()
	var gone []*running
	for path, r := range a.byPath {
		if !present[path] {
			gone = append(gone, r)
			delete(a.byPath, path)
		}
	}
	for path := range a.seen {
		if !present[path] {
			delete(a.seen, path)
		}
	}
	for name, st := range a.status {
		if !present[st.Path] {
			delete(a.status, name)
		}
	}
	a.mu.Unlock()
	for _, r := range gone {
		a.log.Info("config removed; stopping its collection", "config", r.name, "path", r.path)
		a.stop(r)
		if f, ok := a.opts.Factory.(Forgetter); ok {
			f.Forget(r.name)
		}
	}
	a.updateGauges()
}

func (a *Agent) applyFile(ctx context.Context, f ConfigFile) {
	a.mu.Lock()
	a.seen[f.Path] = f.Hash
	old := a.byPath[f.Path]
	a.mu.Unlock()

	fail := func(name string, err error) {
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(f.Path), ".json")
		}
		msg := err.Error()
		if old != nil {
			msg += " (the previous version of this config keeps collecting)"
		}
		a.log.Error("config not applied", "config", name, "path", f.Path, "err", err)
		a.applies.WithLabelValues("error").Inc()
		a.setStatus(ConfigStatus{Name: name, Path: f.Path, State: StateFailed, Message: msg, Since: time.Now(), Version: short(f.Hash)})
	}
	if f.Err != nil {
		fail("", f.Err)
		return
	}
	name, p, err := a.opts.Factory.Build(f.Data)
	if err != nil {
		fail(name, err)
		return
	}
	if other := a.pathOf(name); other != "" && other != f.Path {
		fail(name, fmt.Errorf("config name %q is already used by %s: give each config a unique configName", name, other))
		return
	}
	if old != nil {
		// Stop the old version first: the new one resumes from the checkpoints
		// the old one saves on the way out, so no line is read twice or skipped.
		a.stop(old)
		a.mu.Lock()
		delete(a.byPath, f.Path)
		if old.name != name {
			delete(a.status, old.name)
		}
		a.mu.Unlock()
	}
	if err := p.Start(ctx); err != nil {
		a.stopPipeline(name, p)
		fail(name, fmt.Errorf("start: %w", err))
		return
	}
	a.mu.Lock()
	a.byPath[f.Path] = &running{name: name, path: f.Path, hash: f.Hash, pipeline: p}
	a.mu.Unlock()
	a.applies.WithLabelValues("ok").Inc()
	a.setStatus(ConfigStatus{Name: name, Path: f.Path, State: StateRunning, Since: time.Now(), Version: short(f.Hash)})
	if old != nil {
		a.log.Info("config changed; collection resumed from saved positions", "config", name, "path", f.Path)
	} else {
		a.log.Info("config applied", "config", name, "path", f.Path)
	}
}

func (a *Agent) pathOf(name string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	for path, r := range a.byPath {
		if r.name == name {
			return path
		}
	}
	return ""
}

func (a *Agent) setStatus(st ConfigStatus) {
	a.mu.Lock()
	a.status[st.Name] = st
	a.mu.Unlock()
	a.updateGauges()
}

func (a *Agent) updateGauges() {
	a.mu.Lock()
	defer a.mu.Unlock()
	counts := map[ConfigState]int{StateRunning: 0, StateFailed: 0}
	for _, st := range a.status {
		counts[st.State]++
	}
	for s, n := range counts {
		a.configs.WithLabelValues(string(s)).Set(float64(n))
	}
}

func (a *Agent) stop(r *running) { a.stopPipeline(r.name, r.pipeline) }

func (a *Agent) stopPipeline(name string, p Pipeline) {
	ctx, cancel := context.WithTimeout(context.Background(), a.opts.ShutdownTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		a.log.Warn("pipeline did not stop cleanly; unacknowledged lines will be read again after restart", "config", name, "err", err)
	}
}

// StopAll stops every pipeline concurrently (inputs stop reading, outputs
// flush) within ctx's deadline.
func (a *Agent) StopAll(ctx context.Context) error {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	a.stopped = true
	a.mu.Lock()
	all := make([]*running, 0, len(a.byPath))
	for _, r := range a.byPath {
		all = append(all, r)
	}
	a.byPath = map[string]*running{}
	a.mu.Unlock()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, r := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.pipeline.Shutdown(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("stop config %s: %w", r.name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Status is a snapshot of the agent for `sluice-agent status` and /status.
type Status struct {
	Healthy   bool           `json:"healthy"`
	ConfigDir string         `json:"configDir"`
	DirError  string         `json:"dirError,omitempty"`
	LastScan  time.Time      `json:"lastScan"`
	Configs   []ConfigStatus `json:"configs"`
	// Collection is read from the metrics registry (Options.Gatherer).
	Collection *CollectionStatus `json:"collection,omitempty"`
	// Central is set when configs also come from a server (SetCentralStatus).
	Central *CentralStatus `json:"centralConfig,omitempty"`
}

// SetCentralStatus registers where status reads the central-config
// connection state from.
func (a *Agent) SetCentralStatus(f func() CentralStatus) {
	a.mu.Lock()
	a.central = f
	a.mu.Unlock()
}

// Status returns the current state. The agent is healthy when it has read its
// config directory recently; failed configs are reported but do not make it
// unhealthy (restarting would not fix them, and the others keep collecting).
func (a *Agent) Status() Status {
	a.mu.Lock()
	st := Status{ConfigDir: a.opts.ConfigDir, LastScan: a.lastScan}
	if a.dirError != nil {
		st.DirError = a.dirError.Error()
	}
	for _, c := range a.status {
		st.Configs = append(st.Configs, c)
	}
	warners := map[string]Warner{}
	for _, r := range a.byPath {
		if w, ok := r.pipeline.(Warner); ok {
			warners[r.name] = w
		}
	}
	central := a.central
	a.mu.Unlock()
	for i, c := range st.Configs {
		if w := warners[c.Name]; w != nil && c.State == StateRunning {
			st.Configs[i].Warnings = w.Warnings()
		}
	}
	sort.Slice(st.Configs, func(i, j int) bool { return st.Configs[i].Name < st.Configs[j].Name })
	st.Healthy = !st.LastScan.IsZero() && time.Since(st.LastScan) < 10*a.opts.PollInterval+5*time.Second
	// Outside the lock: these call into other components.
	if central != nil {
		c := central()
		st.Central = &c
	}
	if a.opts.Gatherer != nil {
		if cs, err := collectionStatus(a.opts.Gatherer); err == nil {
			st.Collection = cs
		}
	}
	return st
}

func short(h [32]byte) string { return fmt.Sprintf("%x", h[:6]) }
