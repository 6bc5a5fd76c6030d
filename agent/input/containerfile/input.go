// Package containerfile collects files written inside containers
// (inputDetail.dockerFile true, DaemonSet mode): the config's logPath is a
// path inside the selected containers, mapped through the pod spec to the
// host directory of the volume that holds it (HostPath) and read through
// the host root mount.
//
// It is agent/input/file with a dynamic set of directories: every
// discovery pass asks for the directories of the selected containers
// (recomputed only when the node's pods changed), so containers that start
// are picked up and the files of containers that stopped are read to their
// end. Tags carry the container's metadata, __path__ the path inside the
// container.
package containerfile

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/input/file"
	"github.com/sluicelog/sluice/agent/kube"
	"github.com/sluicelog/sluice/agent/pipeline"
)

// Config is one dockerFile collection config.
type Config struct {
	// File is the file config; LogPath is the directory inside the
	// containers.
	File file.Config
	// Selector picks the containers (dockerIncludeLabel… and advanced.k8s).
	Selector                            kube.SelectorConfig
	ExternalK8sLabelTag, ExternalEnvTag map[string]string
	// Map says where the host's file systems are.
	Map MapOptions
	// RetryInterval: when some container's directory could not be mapped
	// (a PVC not bound yet), the mapping is retried this often. 0: 10 s.
	RetryInterval time.Duration
}

// Containers is what the input needs to know about the node's containers;
// *kube.PodWatcher implements it.
type Containers interface {
	Containers(dst []kube.Container) []kube.Container
	Generation() uint64
	VolumeName(ctx context.Context, namespace, claim string) (string, error)
}

// Settings carry what the input needs from the agent.
type Settings struct {
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
	Checkpoints *checkpoint.Store
	NewSplitter func() (file.Splitter, error)
	Containers  Containers
}

// Input is one dockerFile config at work.
type Input struct {
	cfg    Config
	file   *file.Input
	ctrs   Containers
	sel    *kube.Selector
	tagger *kube.Tagger
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	gen      uint64
	computed bool
	retryAt  time.Time
	dirs     []mapped // sorted by host directory, longest first
	failed   map[string]string
}

// mapped is one selected container's directory.
type mapped struct {
	host      string // host directory (under HostRoot)
	inside    string // the same directory inside the container
	container kube.Container
}

// New validates cfg and returns an input that sends to next.
func New(cfg Config, next pipeline.Consumer, set Settings) (*Input, error) {
	if set.Containers == nil {
		return nil, fmt.Errorf("dockerFile config %q: no container metadata: files inside containers need the node's pods (run the agent as a DaemonSet with NODE_NAME and API access)", cfg.File.Name)
	}
	sel, err := kube.NewSelector(cfg.Selector)
	if err != nil {
		return nil, fmt.Errorf("dockerFile config %q: %w", cfg.File.Name, err)
	}
	if cfg.Map.KubeletRoot == "" {
		cfg.Map.KubeletRoot = DefaultKubeletRoot
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 10 * time.Second
	}
	in := &Input{cfg: cfg, ctrs: set.Containers, sel: sel, log: set.Logger,
		tagger: kube.NewTagger(cfg.ExternalK8sLabelTag, cfg.ExternalEnvTag), failed: map[string]string{}}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	in.ctx, in.cancel = context.WithCancel(context.Background())
	in.cfg.Map.VolumeName = func(ns, claim string) (string, error) {
		ctx, cancel := context.WithTimeout(in.ctx, 10*time.Second)
		defer cancel()
		return set.Containers.VolumeName(ctx, ns, claim)
	}
	in.file, err = file.New(cfg.File, next, file.Settings{
		Logger: set.Logger, Registerer: set.Registerer, Checkpoints: set.Checkpoints,
		NewSplitter: set.NewSplitter,
		Dirs:        in.hostDirs,
		Tags:        in.tags,
		PathTag:     in.pathTag,
	})
	if err != nil {
		in.cancel()
		return nil, err
	}
	return in, nil
}

// Start begins collection in the background.
func (in *Input) Start(ctx context.Context) error { return in.file.Start(ctx) }

// Shutdown stops reading, waits for acknowledgements until ctx ends and
// saves checkpoints.
func (in *Input) Shutdown(ctx context.Context) error {
	in.cancel()
	return in.file.Shutdown(ctx)
}

// hostDirs is the file input's Dirs hook.
func (in *Input) hostDirs(dst []string) []string {
	in.refresh()
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range in.dirs {
		if hasMeta(m.host) {
			matches, _ := filepath.Glob(m.host)
			dst = append(dst, matches...)
			continue
		}
		dst = append(dst, m.host)
	}
	return dst
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[`) }

// refresh recomputes the directories when the node's pods changed (or a
// failed mapping is due for a retry).
func (in *Input) refresh() {
	gen := in.ctrs.Generation()
	in.mu.Lock()
	due := !in.computed || gen != in.gen || (len(in.failed) > 0 && time.Now().After(in.retryAt))
	in.mu.Unlock()
	if !due {
		return
	}
	logPath := filepath.Clean(in.cfg.File.LogPath)
	// Map the wildcard-free part; the rest is globbed on the host.
	static, pattern := logPath, ""
	if hasMeta(logPath) {
		parts := strings.Split(logPath, "/")
		i := 0
		for i < len(parts) && !hasMeta(parts[i]) {
			i++
		}
		static, pattern = strings.Join(parts[:i], "/"), filepath.Join(parts[i:]...)
		if static == "" {
			static = "/"
		}
	}
	var dirs []mapped
	failed := map[string]string{}
	for _, c := range in.ctrs.Containers(nil) {
		if !in.sel.Match(&c) {
			continue
		}
		host, err := HostPath(&c, static, in.cfg.Map)
		if err != nil {
			failed[c.PodUID+"/"+c.Name] = err.Error()
			continue
		}
		dirs = append(dirs, mapped{host: filepath.Join(host, pattern), inside: logPath, container: c})
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i].host) > len(dirs[j].host) })
	in.mu.Lock()
	for k, msg := range failed {
		if in.failed[k] != msg {
			in.log.Warn("files of a selected container cannot be collected", "config", in.cfg.File.Name, "container", k, "error", msg)
		}
	}
	in.dirs, in.failed, in.gen, in.computed = dirs, failed, gen, true
	in.retryAt = time.Now().Add(in.cfg.RetryInterval)
	in.mu.Unlock()
}

// find returns the mapping that holds the host path, if any.
func (in *Input) find(path string) (mapped, string, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range in.dirs {
		if hasMeta(m.host) {
			static := m.host[:strings.IndexAny(m.host, `*?[`)]
			if strings.HasPrefix(path, static) {
				// path = <static><globbed part…>/<rest>: the inside path
				// keeps the same tail.
				return m, filepath.Join(m.inside[:len(m.inside)-len(m.host)+len(static)], path[len(static):]), true
			}
			continue
		}
		if path == m.host || strings.HasPrefix(path, m.host+"/") {
			return m, filepath.Join(m.inside, path[len(m.host):]), true
		}
	}
	return mapped{}, "", false
}

func (in *Input) tags(path string, add func(key, value string)) {
	if m, _, ok := in.find(path); ok {
		in.tagger.Add(&m.container, add)
	}
}

func (in *Input) pathTag(path string) string {
	if _, inside, ok := in.find(path); ok {
		return inside
	}
	return path
}
