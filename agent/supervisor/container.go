package supervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicelog/sluice/agent/input/containerfile"
	"github.com/sluicelog/sluice/agent/input/containerstdout"
	"github.com/sluicelog/sluice/agent/input/file"
	"github.com/sluicelog/sluice/agent/kube"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/logconfig"
)

// ContainerMetadata is the node's pod metadata the container inputs use;
// *kube.PodWatcher implements it.
type ContainerMetadata interface {
	containerstdout.Metadata
	containerfile.Containers
}

// ContainerOptions configure container collection.
type ContainerOptions struct {
	// Metadata is the node's pods (DaemonSet mode). Nil: service_docker_stdout
	// tags logs with what the log paths tell, and dockerFile configs are
	// refused.
	Metadata ContainerMetadata
	// StdoutRoot is where service_docker_stdout finds container logs
	// (default /var/log/pods; under the host root mount when the agent
	// mounts it there); StdoutLayout is containerstdout.LayoutPods (default) or
	// containerstdout.LayoutFlat for a serverless pod's stdout volume (/stdlog).
	StdoutRoot, StdoutLayout string
	// HostRoot and KubeletRoot locate the host's file systems for
	// dockerFile configs (defaults /logtail_host and /var/lib/kubelet).
	HostRoot, KubeletRoot string
}

// input is what a pipeline starts and stops.
type input interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// mapStdout maps a plugin config with a service_docker_stdout input.
func (f *PipelineFactory) mapStdout(name string, cfg *logconfig.Config) (string, *Components, error) {
	d := &cfg.InputDetail
	pl, err := d.PluginPipeline()
	if err != nil {
		return name, nil, fmt.Errorf("config %q: %w", name, err)
	}
	var ds *logconfig.DockerStdout
	for i, it := range pl.Inputs {
		if it.Type != logconfig.PluginInputDockerStdout {
			return name, nil, fmt.Errorf("config %q: inputDetail.plugin.inputs[%d].type %q is not supported: this agent's plugin input is %s", name, i, it.Type, logconfig.PluginInputDockerStdout)
		}
		if ds != nil {
			return name, nil, fmt.Errorf("config %q: inputDetail.plugin.inputs: more than one %s input: use one config per input", name, logconfig.PluginInputDockerStdout)
		}
		if ds, err = logconfig.ParseDockerStdout(it.Detail); err != nil {
			return name, nil, fmt.Errorf("config %q: inputDetail.plugin.inputs[%d].detail: %w", name, i, err)
		}
	}
	if ds == nil {
		return name, nil, fmt.Errorf("config %q: inputDetail.plugin.inputs is empty: add {\"type\": %q}", name, logconfig.PluginInputDockerStdout)
	}
	plc, err := f.pluginConfig(name, pl)
	if err != nil {
		return name, nil, err
	}
	co := f.opts.Container
	sc := containerstdout.Config{
		Name: name, Root: co.StdoutRoot, Layout: co.StdoutLayout,
		Stdout: *ds.Stdout, Stderr: *ds.Stderr,
		BeginLineRegex:       ds.BeginLineRegex,
		BeginLineTimeout:     time.Duration(ds.BeginLineTimeoutMs) * time.Millisecond,
		BeginLineCheckLength: ds.BeginLineCheckLength,
		MaxLogSize:           ds.MaxLogSize,
		StartLogMaxOffset:    ds.StartLogMaxOffset,
		Selector: kube.SelectorConfig{
			IncludeLabel: ds.IncludeLabel, ExcludeLabel: ds.ExcludeLabel,
			IncludeEnv: ds.IncludeEnv, ExcludeEnv: ds.ExcludeEnv,
			IncludeK8sLabel: ds.IncludeK8sLabel, ExcludeK8sLabel: ds.ExcludeK8sLabel,
			K8sNamespaceRegex: ds.K8sNamespaceRegex, K8sPodRegex: ds.K8sPodRegex, K8sContainerRegex: ds.K8sContainerRegex,
		},
		ExternalK8sLabelTag: ds.ExternalK8sLabelTag, ExternalEnvTag: ds.ExternalEnvTag,
		File: f.opts.FileTuning,
	}
	if sc.Root == "" {
		sc.Root = containerstdout.DefaultRoot
	}
	sc.File.IgnoreDevice = f.opts.IgnoreDevice
	if err := sc.Validate(); err != nil {
		return name, nil, fmt.Errorf("config %q: inputDetail.plugin.inputs[0].detail: %w", name, err)
	}
	prc, err := f.processConfig(name, d)
	if err != nil {
		return name, nil, err
	}
	return name, &Components{Config: cfg, Stdout: &sc, Plugin: plc, Process: prc}, nil
}

// dockerFileConfig maps a dockerFile config's selection onto the
// containerfile input.
func (f *PipelineFactory) dockerFileConfig(fc file.Config, d *logconfig.InputDetail) *containerfile.Config {
	co := f.opts.Container
	c := &containerfile.Config{
		File: fc,
		Selector: kube.SelectorConfig{
			IncludeLabel: d.DockerIncludeLabel, ExcludeLabel: d.DockerExcludeLabel,
			IncludeEnv: d.DockerIncludeEnv, ExcludeEnv: d.DockerExcludeEnv,
		},
		Map: containerfile.MapOptions{HostRoot: co.HostRoot, KubeletRoot: co.KubeletRoot},
	}
	if c.Map.HostRoot == "" {
		c.Map.HostRoot = containerfile.DefaultHostRoot
	}
	if d.Advanced != nil && d.Advanced.K8s != nil {
		k := d.Advanced.K8s
		c.Selector.K8sNamespaceRegex, c.Selector.K8sPodRegex, c.Selector.K8sContainerRegex = k.K8sNamespaceRegex, k.K8sPodRegex, k.K8sContainerRegex
		c.Selector.IncludeK8sLabel, c.Selector.ExcludeK8sLabel = k.IncludeK8sLabel, k.ExcludeK8sLabel
		c.ExternalK8sLabelTag, c.ExternalEnvTag = k.ExternalK8sLabelTag, k.ExternalEnvTag
	}
	return c
}

// newInput builds the pipeline's input: container stdout (its events skip
// the parse stage, a plugin config has no logType, and go to parsed: the
// plugin processors, then processing), files inside containers, or plain
// files.
func (p *filePipeline) newInput(parser, parsed pipeline.Consumer, newSplitter func() (file.Splitter, error)) (input, error) {
	o := p.f.opts
	switch {
	case p.c.Stdout != nil:
		set := containerstdout.Settings{Logger: p.log, Registerer: o.Registerer, Checkpoints: o.Checkpoints}
		if o.Container.Metadata != nil {
			set.Metadata = o.Container.Metadata
		}
		return containerstdout.New(*p.c.Stdout, parsed, set)
	case p.c.DockerFile != nil:
		return containerfile.New(*p.c.DockerFile, parser, containerfile.Settings{
			Logger: p.log, Registerer: o.Registerer, Checkpoints: o.Checkpoints,
			NewSplitter: newSplitter, Containers: o.Container.Metadata,
		})
	}
	return file.New(p.c.File, parser, file.Settings{
		Logger: p.log, Registerer: o.Registerer, Checkpoints: o.Checkpoints, NewSplitter: newSplitter,
	})
}
