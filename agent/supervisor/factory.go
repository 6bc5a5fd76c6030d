package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/input/containerfile"
	"github.com/sluicelog/sluice/agent/input/containerstdout"
	"github.com/sluicelog/sluice/agent/input/file"
	"github.com/sluicelog/sluice/agent/multiline"
	"github.com/sluicelog/sluice/agent/parse"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/agent/plugin"
	"github.com/sluicelog/sluice/agent/process"
	"github.com/sluicelog/sluice/logconfig"
)

// Output is what a pipeline sends to: a pipeline.Consumer that also starts
// and stops (every agent/output/* component).
type Output interface {
	pipeline.Consumer
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// OutputProvider hands each pipeline the output its config sends to.
// Acquire is called when a pipeline starts; release when it has stopped
// (its input drained), so an output shared by several configs is stopped
// only when the last one lets go.
type OutputProvider interface {
	Acquire(ctx context.Context, cfg *logconfig.Config) (out pipeline.Consumer, release func(context.Context) error, err error)
}

// SharedOutput sends every config to one output (stdout, a file, null),
// started and stopped by the caller: start it before the agent, stop it after
// Agent.Run returned.
type SharedOutput struct{ Out pipeline.Consumer }

// Acquire returns the shared output.
func (s SharedOutput) Acquire(context.Context, *logconfig.Config) (pipeline.Consumer, func(context.Context) error, error) {
	return s.Out, func(context.Context) error { return nil }, nil
}

// OutputsByKey builds one output per key (for the Log Service output: per
// endpoint/project/logstore, each with its own disk buffer), started on first
// use and stopped when the last config using it stops.
type OutputsByKey struct {
	// Key names the output cfg sends to; configs with equal keys share it.
	Key func(cfg *logconfig.Config) (string, error)
	// New builds the output for cfg (the first config with its key).
	New func(cfg *logconfig.Config) (Output, error)

	mu   sync.Mutex
	outs map[string]*sharedOut
}

type sharedOut struct {
	out  Output
	refs int
}

// Acquire returns the output for cfg's key, building and starting it when no
// running config uses it yet.
func (o *OutputsByKey) Acquire(ctx context.Context, cfg *logconfig.Config) (pipeline.Consumer, func(context.Context) error, error) {
	key, err := o.Key(cfg)
	if err != nil {
		return nil, nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.outs == nil {
		o.outs = map[string]*sharedOut{}
	}
	s := o.outs[key]
	if s == nil {
		out, err := o.New(cfg)
		if err != nil {
			return nil, nil, err
		}
		if err := out.Start(ctx); err != nil {
			_ = out.Shutdown(context.Background())
			return nil, nil, fmt.Errorf("start output %s: %w", key, err)
		}
		s = &sharedOut{out: out}
		o.outs[key] = s
	}
	s.refs++
	var once sync.Once
	release := func(ctx context.Context) error {
		var err error
		once.Do(func() {
			o.mu.Lock()
			s.refs--
			last := s.refs == 0
			if last {
				delete(o.outs, key)
			}
			o.mu.Unlock()
			if last {
				err = s.out.Shutdown(ctx)
			}
		})
		return err
	}
	return s.out, release, nil
}

// FactoryOptions configure the pipelines a PipelineFactory builds.
type FactoryOptions struct {
	// Instance is the agent's instance config (tail limit, read buffer,
	// identity, env tags).
	Instance *logconfig.Instance
	// Checkpoints is the agent's one store, shared by all configs so a
	// replaced config resumes where its predecessor stopped.
	Checkpoints *checkpoint.Store
	Outputs     OutputProvider
	// Hostname is the __hostname__ tag ("" adds none).
	Hostname string
	// IgnoreDevice matches checkpoints by inode and signature only (PV/NAS
	// volumes, shared-PVC mode: the device id changes when the pod moves).
	IgnoreDevice bool
	// FileTuning supplies the file input's tuning fields (poll interval,
	// batch sizes, in-flight limit …); zero fields get file.DefaultConfig.
	FileTuning file.Config
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Container collection (DaemonSet / serverless stdout); see container.go.
	Container ContainerOptions
}

// PipelineFactory builds file collection pipelines (file input → multiline →
// parse → process → output) from Logtail collection configs. It implements
// Factory.
type PipelineFactory struct {
	opts FactoryOptions
	ml   *multiline.Metrics
}

// NewPipelineFactory returns a factory.
func NewPipelineFactory(opts FactoryOptions) (*PipelineFactory, error) {
	if opts.Instance == nil {
		opts.Instance = logconfig.NewDefaultInstance()
	}
	if opts.Checkpoints == nil {
		return nil, errors.New("supervisor: FactoryOptions.Checkpoints is required")
	}
	if opts.Outputs == nil {
		return nil, errors.New("supervisor: FactoryOptions.Outputs is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ml, err := multiline.NewMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	return &PipelineFactory{opts: opts, ml: ml}, nil
}

// Components is a collection config mapped onto the component configs.
type Components struct {
	Config    *logconfig.Config
	File      file.Config
	Multiline multiline.Config
	Parse     parse.Config
	// Plugin is inputDetail.plugin.processors: run after parsing (files)
	// or on the collected events (container stdout), before Process.
	Plugin  plugin.Config
	Process process.Config
	// Stdout is set for a service_docker_stdout plugin config (then File,
	// Multiline and Parse are unused); DockerFile for a dockerFile file
	// config (its File.LogPath is inside the containers).
	Stdout     *containerstdout.Config
	DockerFile *containerfile.Config
}

// Map parses a collection config (Logtail JSON), applies the SDK defaults,
// validates it and maps it onto the component configs. The error is the
// validation error as logconfig words it (key path and fix), so status shows
// it verbatim; the name is returned whenever the JSON has one.
func (f *PipelineFactory) Map(data []byte) (string, *Components, error) {
	cfg, err := logconfig.Parse(data)
	if err != nil {
		return "", nil, err
	}
	name := cfg.ConfigName
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return name, nil, err
	}
	for _, w := range cfg.Warnings() {
		f.opts.Logger.Warn("collection config has an unknown key", "config", name, "warning", w.Error())
	}
	d := &cfg.InputDetail
	if cfg.InputType == logconfig.InputTypePlugin {
		return f.mapStdout(name, cfg)
	}
	if cfg.InputType != logconfig.InputTypeFile {
		return name, nil, fmt.Errorf("config %q: inputType %q: this agent collects files only (container stdout is not built yet): use inputType file", name, cfg.InputType)
	}
	if d.DockerFile && f.opts.Container.Metadata == nil {
		return name, nil, fmt.Errorf("config %q: inputDetail.dockerFile: files inside containers need the node's pod metadata: run the agent as a DaemonSet with NODE_NAME set and API access, or mount the log directory into the agent and set dockerFile false", name)
	}
	in := f.opts.Instance

	fc := f.opts.FileTuning
	fc.Name = name
	fc.LogPath = d.LogPath
	fc.FilePattern = d.FilePattern
	fc.MaxDepth = *d.MaxDepth
	fc.TailExisted = d.TailExisted
	fc.TailSizeKB = in.DefaultTailLimitKB
	if d.Advanced != nil {
		if d.Advanced.TailSizeKB > 0 {
			fc.TailSizeKB = d.Advanced.TailSizeKB
		}
		if b := d.Advanced.Blacklist; b != nil {
			fc.DirBlacklist, fc.FilenameBlacklist, fc.FilepathBlacklist = b.DirBlacklist, b.FilenameBlacklist, b.FilepathBlacklist
		}
	}
	fc.TopicFormat = d.TopicFormat
	if fc.TopicFormat == "" {
		fc.TopicFormat = logconfig.TopicFormatNone
	}
	fc.IgnoreDevice = f.opts.IgnoreDevice
	fc.Encoding = d.FileEncoding
	if fc.Encoding == "" {
		fc.Encoding = logconfig.EncodingUTF8
	}
	fc.DiscardNonUTF8 = d.DiscardNonUTF8
	if in.MaxReadBufferSize > 0 {
		fc.MaxReadBufferSize = in.MaxReadBufferSize
	}
	if err := fc.Validate(); err != nil {
		return name, nil, fmt.Errorf("config %q: %w", name, err)
	}

	discard := d.DiscardUnmatch != nil && *d.DiscardUnmatch
	var mc multiline.Config
	if d.LogType == logconfig.LogTypeRegex || d.LogType == logconfig.LogTypeApsara {
		mc.BeginRegex = d.LogBeginRegex
	}
	mc.MaxEventBytes = fc.MaxReadBufferSize
	mc.DiscardUnmatched = discard
	mc.Counters = f.ml.Counters(name)
	mc.Logger = f.opts.Logger.With("config", name)
	if err := mc.Validate(); err != nil {
		return name, nil, fmt.Errorf("config %q: %w", name, err)
	}

	pc := parse.Config{
		Name:               name,
		LogType:            d.LogType,
		Regex:              d.Regex,
		Keys:               d.Key,
		Separator:          d.Separator,
		Quote:              d.Quote,
		AutoExtend:         d.AutoExtend != nil && *d.AutoExtend,
		AcceptNoEnoughKeys: d.AcceptNoEnoughKeys,
		TimeKey:            d.TimeKey,
		TimeFormat:         d.TimeFormat,
		AdjustTimezone:     d.AdjustTimezone,
		LogTimezone:        d.LogTimezone,
		DiscardUnmatch:     discard,
		EnableRawLog:       d.EnableRawLog,
	}
	// The SDK's "simple mode" (whole line into content) is a regex config
	// whose regex captures everything into "content": keeping the event as
	// it is gives the same result without running a regex.
	if pc.LogType == parse.Regex && pc.Regex == logconfig.DefaultRegex &&
		len(pc.Keys) == 1 && pc.Keys[0] == logconfig.DefaultKey && pc.TimeFormat == "" {
		pc.LogType = parse.None
	}
	if pc.Quote == logconfig.DefaultQuote && pc.LogType != parse.Delimiter {
		pc.Quote = ""
	}
	if err := pc.Validate(); err != nil {
		return name, nil, fmt.Errorf("config %q: %w", name, err)
	}

	prc, err := f.processConfig(name, d)
	if err != nil {
		return name, nil, err
	}
	var plc plugin.Config
	if pl, _ := d.PluginPipeline(); pl != nil { // validated above
		if plc, err = f.pluginConfig(name, pl); err != nil {
			return name, nil, err
		}
	}
	comps := &Components{Config: cfg, File: fc, Multiline: mc, Parse: pc, Plugin: plc, Process: prc}
	if d.DockerFile {
		comps.DockerFile = f.dockerFileConfig(fc, d)
	}
	return name, comps, nil
}

// pluginConfig maps a plugin pipeline's processors; aggregators and
// flushers are not run (the config's output is the Log Service), which is
// said once per config.
func (f *PipelineFactory) pluginConfig(name string, pl *logconfig.Plugin) (plugin.Config, error) {
	c := plugin.Config{Name: name, Processors: pl.Processors}
	warnings, err := c.Validate()
	if err != nil {
		return c, fmt.Errorf("config %q: %w", name, err)
	}
	for _, w := range warnings {
		f.opts.Logger.Warn("plugin processor detail has a key this agent does not use", "config", name, "warning", w)
	}
	if len(pl.Aggregators)+len(pl.Flushers) > 0 {
		f.opts.Logger.Warn("plugin aggregators and flushers are not run: events go to the config's outputDetail logstore",
			"config", name)
	}
	return c, nil
}

// processConfig maps the process stage's part of a config (filters,
// masking, tags); shared by file and plugin configs.
func (f *PipelineFactory) processConfig(name string, d *logconfig.InputDetail) (process.Config, error) {
	in := f.opts.Instance
	prc := process.Config{
		Name:        name,
		FilterKey:   d.FilterKey,
		FilterRegex: d.FilterRegex,
	}
	for _, k := range d.SensitiveKeys {
		prc.SensitiveKeys = append(prc.SensitiveKeys, process.SensitiveKey{
			Key: k.Key, Type: k.Type, RegexBegin: k.RegexBegin, RegexContent: k.RegexContent, All: k.All, Const: k.Const,
		})
	}
	if d.EnableTag == nil || *d.EnableTag {
		prc.Hostname = f.opts.Hostname
		prc.UserDefinedID = strings.Join(in.UserDefinedIDs, ",")
		for _, t := range in.EnvTagValues {
			prc.EnvTags = append(prc.EnvTags, pipeline.Field{Key: t.Key, Value: t.Value})
		}
	}
	if err := prc.Validate(); err != nil {
		return prc, fmt.Errorf("config %q: %w", name, err)
	}
	return prc, nil
}

// Build maps data (see Map) into a pipeline that is not started. The
// components are constructed by Start: a config being replaced still owns
// its metrics until it has stopped.
func (f *PipelineFactory) Build(data []byte) (string, Pipeline, error) {
	name, c, err := f.Map(data)
	if err != nil {
		return name, nil, err
	}
	return name, &filePipeline{f: f, c: c, log: f.opts.Logger.With("config", name)}, nil
}

// Forget drops the saved positions of a config that was removed, so adding
// it again later starts like a new config instead of resuming from stale
// offsets.
func (f *PipelineFactory) Forget(name string) { f.opts.Checkpoints.Forget(name) }

type filePipeline struct {
	f   *PipelineFactory
	c   *Components
	log *slog.Logger

	mu      sync.Mutex
	in      input
	release func(context.Context) error
}

func (p *filePipeline) Start(ctx context.Context) error {
	o := p.f.opts
	out, release, err := o.Outputs.Acquire(ctx, p.c.Config)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	proc, err := process.NewStage(p.c.Process, out, process.Settings{Logger: p.log, Registerer: o.Registerer})
	if err != nil {
		_ = release(ctx)
		return err
	}
	// Parsed events go through the plugin processors, if any, then proc.
	parsed := pipeline.Consumer(proc)
	if len(p.c.Plugin.Processors) > 0 {
		// Like the parser, the stage names the config itself (config=).
		if parsed, err = plugin.NewStage(p.c.Plugin, proc, plugin.Settings{Logger: o.Logger, Registerer: o.Registerer}); err != nil {
			_ = release(ctx)
			return err
		}
	}
	// The parser names the config in its own log lines (config=); p.log
	// already carries it.
	parser, err := parse.NewStage(p.c.Parse, parsed, parse.Settings{Logger: o.Logger, Registerer: o.Registerer})
	if err != nil {
		_ = release(ctx)
		return err
	}
	var newSplitter func() (file.Splitter, error)
	if mc := p.c.Multiline; mc.BeginRegex != "" && mc.BeginRegex != logconfig.DefaultLogBeginRegex {
		newSplitter = func() (file.Splitter, error) { return multiline.New(mc) }
	}
	in, err := p.newInput(parser, parsed, newSplitter)
	if err != nil {
		_ = release(ctx)
		return err
	}
	if err := in.Start(ctx); err != nil {
		_ = in.Shutdown(ctx)
		_ = release(ctx)
		return err
	}
	p.mu.Lock()
	p.in, p.release = in, release
	p.mu.Unlock()
	return nil
}

// Warnings explains a topicFormat path regex that does not match the files
// the config collects.
func (p *filePipeline) Warnings() []string {
	p.mu.Lock()
	in := p.in
	p.mu.Unlock()
	if tw, ok := in.(interface{ TopicWarning() string }); ok {
		if w := tw.TopicWarning(); w != "" {
			return []string{w}
		}
	}
	return nil
}

// Shutdown stops the input first (it waits for its batches to be acked and
// saves their positions), then lets go of the output.
func (p *filePipeline) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	in, release := p.in, p.release
	p.in, p.release = nil, nil
	p.mu.Unlock()
	var errs []error
	if in != nil {
		if err := in.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("input: %w", err))
		}
	}
	if release != nil {
		if err := release(ctx); err != nil {
			errs = append(errs, fmt.Errorf("output: %w", err))
		}
	}
	return errors.Join(errs...)
}
