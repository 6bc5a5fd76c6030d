// Package containerstdout is the container stdout/stderr input of sluice-agent
// (service_docker_stdout): in DaemonSet mode it reads the files the kubelet
// keeps under /var/log/pods/<namespace>_<pod>_<uid>/<container>/<N>.log,
// in a serverless pod the runtime's files mounted into the sidecar
// (<root>/<container>/<N>.log). Each line is a record of the container
// runtime — CRI ("<time> <stream> <P|F> <text>") or Docker json-file — and
// is decoded, partial records joined, streams selected and multiline events
// formed by Decoder.
//
// Tailing itself (discovery, kubelet's rename rotation, files of deleted
// pods read to their end, checkpoints, acknowledgements, back-pressure) is
// agent/input/file's, reused through its Decoder/Accept/Tags hooks rather
// than written again: one set of rules for every file the agent reads.
//
// Containers are selected by the config's include/exclude label, env and
// pod label maps and namespace/pod/container regexes (agent/kube), and
// their logs tagged with the pod's metadata. A pod that the metadata cache
// does not know (yet) is collected with what its log path tells
// (namespace, pod, uid, container) and enriched once the metadata arrives;
// lines never wait in memory for it. Only a selector that needs the pod
// object (env, pod labels) holds a new container's file unread until the
// metadata arrives, at most MetadataWait, after which it decides with what
// the path tells.
package containerstdout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/input/file"
	"github.com/sluicelog/sluice/agent/kube"
	"github.com/sluicelog/sluice/agent/multiline"
	"github.com/sluicelog/sluice/agent/pipeline"
)

// Layouts of the directory tree under Config.Root.
const (
	// LayoutPods is the kubelet's: <ns>_<pod>_<uid>/<container>/<N>.log.
	LayoutPods = "pods"
	// LayoutFlat is a serverless pod's stdout volume: <container>/<N>.log.
	LayoutFlat = "flat"
)

// DefaultRoot is where the kubelet keeps container logs.
const DefaultRoot = "/var/log/pods"

// Config is one service_docker_stdout config as the input needs it.
type Config struct {
	// Name is the collection config name (checkpoints are keyed by it).
	Name string
	// Root is the log directory as the agent sees it: /var/log/pods, or
	// the same under the host root mount; for LayoutFlat the mounted
	// stdout volume (e.g. /stdlog).
	Root string
	// Layout is LayoutPods (default) or LayoutFlat.
	Layout string
	// Stdout and Stderr select the streams.
	Stdout, Stderr bool
	// BeginLineRegex starts a multiline event; empty or ".*": one event
	// per line. BeginLineTimeout flushes an open event (and an unfinished
	// partial line) once the file has been idle that long.
	BeginLineRegex   string
	BeginLineTimeout time.Duration
	// BeginLineCheckLength: BeginLineRegex looks at most at this many
	// bytes of a line's start (0: the whole line).
	BeginLineCheckLength int
	// MaxLogSize bounds one line joined from partial records and one
	// multiline event; longer ones are cut (counted).
	MaxLogSize int
	// StartLogMaxOffset: a container log seen for the first time is read
	// from its start when at most this large, else from this many bytes
	// before its end.
	StartLogMaxOffset int64
	// Selector picks the containers; the zero value takes all.
	Selector kube.SelectorConfig
	// ExternalK8sLabelTag maps pod labels to tags, ExternalEnvTag
	// container env variables to tags.
	ExternalK8sLabelTag, ExternalEnvTag map[string]string
	// MetadataWait bounds how long a new container's file waits for its
	// pod's metadata when the selector needs it (env, pod labels). 0
	// means 10 s.
	MetadataWait time.Duration
	// File carries the file input's tuning fields (poll interval, batch
	// sizes, in-flight limit…); collection fields are set from the above.
	File file.Config
}

// Metadata is what the input asks about containers; *kube.PodWatcher
// implements it.
type Metadata interface {
	Container(podUID, name string) (kube.Container, bool)
	HasSynced() bool
	Generation() uint64
}

// Settings carry what the input needs from the agent.
type Settings struct {
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
	Checkpoints *checkpoint.Store
	// Metadata is the node's pod metadata; nil collects with what the
	// log paths tell (serverless pods, agents without API access).
	Metadata Metadata
}

// Validate reports every problem, naming the plugin's keys.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("configName must not be empty: checkpoints are keyed by it"))
	}
	if c.Root == "" || !filepath.IsAbs(c.Root) {
		errs = append(errs, fmt.Errorf("container log root must be an absolute directory, got %q", c.Root))
	}
	switch c.Layout {
	case "", LayoutPods, LayoutFlat:
	default:
		errs = append(errs, fmt.Errorf("layout must be %q or %q, got %q", LayoutPods, LayoutFlat, c.Layout))
	}
	if c.MaxLogSize < 0 || c.MaxLogSize > file.MaxReadBufferLimit {
		errs = append(errs, fmt.Errorf("MaxLogSize must be between 0 (default 512 KiB) and 8 MiB, got %d", c.MaxLogSize))
	}
	if c.StartLogMaxOffset < 0 {
		errs = append(errs, fmt.Errorf("StartLogMaxOffset must not be negative, got %d", c.StartLogMaxOffset))
	}
	if c.BeginLineTimeout < 0 {
		errs = append(errs, fmt.Errorf("BeginLineTimeoutMs must not be negative, got %s", c.BeginLineTimeout))
	}
	if _, err := kube.NewSelector(c.Selector); err != nil {
		errs = append(errs, err)
	}
	if err := (DecoderConfig{Stdout: c.Stdout, Stderr: c.Stderr, Multiline: multiline.Config{BeginRegex: c.BeginLineRegex}}).Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Input is one container stdout config at work.
type Input struct {
	cfg    Config
	file   *file.Input
	md     Metadata
	sel    *kube.Selector
	tagger *kube.Tagger
	log    *slog.Logger

	mu        sync.Mutex
	paths     map[string]pathInfo
	decisions map[string]decision
}

type pathInfo struct {
	ok                      bool
	ns, pod, uid, container string
}

type decision struct {
	gen       uint64
	firstSeen time.Time
	decided   bool
	selected  bool
}

// New validates cfg and returns an input that sends to next.
func New(cfg Config, next pipeline.Consumer, set Settings) (*Input, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("container input %q: %w", cfg.Name, err)
	}
	if cfg.Layout == "" {
		cfg.Layout = LayoutPods
	}
	next = newMetaFields(next) // container metadata as log fields, as Logtail sends it
	if cfg.MaxLogSize == 0 {
		cfg.MaxLogSize = DefaultMaxLogSize
	}
	if cfg.MetadataWait == 0 {
		cfg.MetadataWait = 10 * time.Second
	}
	sel, err := kube.NewSelector(cfg.Selector)
	if err != nil {
		return nil, err
	}
	in := &Input{cfg: cfg, md: set.Metadata, sel: sel, log: set.Logger,
		tagger: kube.NewTagger(cfg.ExternalK8sLabelTag, cfg.ExternalEnvTag),
		paths:  map[string]pathInfo{}, decisions: map[string]decision{}}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	mlm, err := multiline.NewMetrics(set.Registerer)
	if err != nil {
		return nil, err
	}
	cm, err := NewMetrics(set.Registerer)
	if err != nil {
		return nil, err
	}
	dc := DecoderConfig{
		Stdout: cfg.Stdout, Stderr: cfg.Stderr, MaxLogSize: cfg.MaxLogSize,
		Counters: cm.Counters(cfg.Name),
	}
	if cfg.BeginLineRegex != "" && cfg.BeginLineRegex != ".*" {
		dc.Multiline = multiline.Config{BeginRegex: cfg.BeginLineRegex, MaxEventBytes: cfg.MaxLogSize, CheckLength: cfg.BeginLineCheckLength,
			Counters: mlm.Counters(cfg.Name), Logger: in.log.With("config", cfg.Name)}
	}
	if _, err := NewDecoder(dc); err != nil {
		return nil, fmt.Errorf("container input %q: %w", cfg.Name, err)
	}

	fc := cfg.File
	fc.Name = cfg.Name
	fc.LogPath = cfg.Root
	fc.FilePattern = "*.log"
	fc.MaxDepth = 2
	if cfg.Layout == LayoutFlat {
		fc.MaxDepth = 1
	}
	fc.TailExisted = true
	fc.TailSizeKB = int((cfg.StartLogMaxOffset + 1023) >> 10)
	if cfg.StartLogMaxOffset == 0 {
		fc.TailSizeKB = 128
	}
	fc.TopicFormat = "none"
	if cfg.BeginLineTimeout > 0 {
		fc.FlushTimeout = cfg.BeginLineTimeout
	}
	// A raw record is at most a partial (16 KiB) plus its prefix, but a
	// runtime without partials may write a whole long line: read up to
	// MaxLogSize plus room for the prefix/JSON escaping.
	fc.MaxReadBufferSize = max(fc.MaxReadBufferSize, min(cfg.MaxLogSize+cfg.MaxLogSize/4+256, file.MaxReadBufferLimit))
	in.file, err = file.New(fc, next, file.Settings{
		Logger: set.Logger, Registerer: set.Registerer, Checkpoints: set.Checkpoints,
		NewDecoder: func(string) (file.Decoder, error) { return NewDecoder(dc) },
		Accept:     in.accept,
		Tags:       in.tags,
	})
	if err != nil {
		return nil, fmt.Errorf("container input %q: %w", cfg.Name, err)
	}
	return in, nil
}

// Start begins collection in the background.
func (in *Input) Start(ctx context.Context) error { return in.file.Start(ctx) }

// Shutdown stops reading, waits for acknowledgements until ctx ends and
// saves checkpoints (see file.Input.Shutdown).
func (in *Input) Shutdown(ctx context.Context) error { return in.file.Shutdown(ctx) }

// ParsePodLogPath splits a kubelet log path relative to the root,
// "<ns>_<pod>_<uid>/<container>/<N>.log". Namespaces and pod names cannot
// contain '_', so the split is unambiguous.
func ParsePodLogPath(rel string) (ns, pod, uid, container string, ok bool) {
	parts := strings.Split(rel, "/")
	if len(parts) != 3 {
		return "", "", "", "", false
	}
	ids := strings.Split(parts[0], "_")
	if len(ids) != 3 || ids[0] == "" || ids[1] == "" || ids[2] == "" || parts[1] == "" {
		return "", "", "", "", false
	}
	return ids[0], ids[1], ids[2], parts[1], true
}

func (in *Input) info(path string) pathInfo {
	in.mu.Lock()
	defer in.mu.Unlock()
	if p, ok := in.paths[path]; ok {
		return p
	}
	var p pathInfo
	rel, err := filepath.Rel(in.cfg.Root, path)
	if err == nil {
		if in.cfg.Layout == LayoutFlat {
			if parts := strings.Split(rel, "/"); len(parts) == 2 {
				p = pathInfo{ok: true, container: parts[0]}
			}
		} else {
			p.ns, p.pod, p.uid, p.container, p.ok = ParsePodLogPath(rel)
		}
	}
	if len(in.paths) > 100_000 {
		clear(in.paths) // bounded: pods come and go
	}
	in.paths[path] = p
	return p
}

func (in *Input) container(p pathInfo) kube.Container {
	if in.md != nil && p.uid != "" {
		if c, ok := in.md.Container(p.uid, p.container); ok {
			return c
		}
	}
	return kube.Container{Namespace: p.ns, PodName: p.pod, PodUID: p.uid, Name: p.container}
}

// accept decides whether a newly found log file is collected.
func (in *Input) accept(path string) bool {
	p := in.info(path)
	if !p.ok {
		return false // not a container log (a stray file under the root)
	}
	var gen uint64
	if in.md != nil {
		gen = in.md.Generation()
	}
	now := time.Now()
	in.mu.Lock()
	d, seen := in.decisions[path]
	in.mu.Unlock()
	if seen && d.decided && d.gen == gen {
		return d.selected
	}
	if !seen {
		d.firstSeen = now
	}
	c := in.container(p)
	d.gen = gen
	d.decided = true
	if !c.Known && in.md != nil && in.sel.NeedsPod() && now.Sub(d.firstSeen) < in.cfg.MetadataWait {
		d.decided = false // wait for the pod's env/labels
	} else {
		d.selected = in.sel.Match(&c)
		if !c.Known && in.sel.NeedsPod() {
			in.log.Info("container log selected without its pod's metadata (pod unknown to the cache)",
				"config", in.cfg.Name, "path", path, "selected", d.selected)
		}
	}
	in.mu.Lock()
	if len(in.decisions) > 100_000 {
		clear(in.decisions)
	}
	in.decisions[path] = d
	in.mu.Unlock()
	return d.decided && d.selected
}

// tags adds the container's metadata to a batch of path.
func (in *Input) tags(path string, add func(key, value string)) {
	p := in.info(path)
	if !p.ok {
		return
	}
	if in.cfg.Layout == LayoutFlat {
		add(kube.TagContainerName, p.container)
		return
	}
	c := in.container(p)
	in.tagger.Add(&c, add)
}
