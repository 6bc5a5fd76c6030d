package app

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/sluicelog/sluice/agent/buffer"
	outfile "github.com/sluicelog/sluice/agent/output/file"
	"github.com/sluicelog/sluice/agent/output/null"
	"github.com/sluicelog/sluice/agent/output/sls"
	"github.com/sluicelog/sluice/agent/output/stdout"
	"github.com/sluicelog/sluice/agent/supervisor"
	"github.com/sluicelog/sluice/logconfig"
)

// OutputFactory creates the outputs one kind of --output names
// (Config.Output is KIND or KIND:ARG). The agent's kinds are listed by
// DefaultOutputs; Settings.Outputs replaces them.
type OutputFactory interface {
	// Type is KIND, e.g. "file".
	Type() string
	// CreateOutputs returns the outputs for ARG ("" when the spec has none).
	// Nothing is started yet.
	CreateOutputs(set OutputSettings, arg string) (Outputs, error)
}

// OutputSettings is what an output factory gets besides its argument: the
// agent's instance config and what users never configure.
type OutputSettings struct {
	Instance *logconfig.Instance
	// Source is the __source__ of every log group (the machine's IP).
	Source     string
	Stdout     io.Writer
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Outputs is what a factory created: where each pipeline sends and, for
// an output every config shares, that output, which the agent starts before
// the first pipeline and stops after the last.
type Outputs struct {
	Provider supervisor.OutputProvider
	// Shared is nil when the provider starts and stops its outputs itself
	// (one per logstore, as supervisor.OutputsByKey).
	Shared supervisor.Output
}

// shared is Outputs for one output every config writes to.
func shared(out supervisor.Output) Outputs {
	return Outputs{Provider: supervisor.SharedOutput{Out: out}, Shared: out}
}

// CreateOutputsFunc is an OutputFactory's create function.
type CreateOutputsFunc func(set OutputSettings, arg string) (Outputs, error)

// NewOutputFactory binds a kind to its create function.
func NewOutputFactory(typ string, create CreateOutputsFunc) OutputFactory {
	return &outputFactory{typ: typ, create: create}
}

type outputFactory struct {
	typ    string
	create CreateOutputsFunc
}

func (f *outputFactory) Type() string { return f.typ }

func (f *outputFactory) CreateOutputs(set OutputSettings, arg string) (Outputs, error) {
	return f.create(set, arg)
}

// DefaultOutputs are sluice-agent's output kinds: stdout, file:PATH, null
// and sls (Log Service / sluice-server).
func DefaultOutputs() []OutputFactory {
	return []OutputFactory{
		NewOutputFactory("stdout", func(set OutputSettings, _ string) (Outputs, error) {
			out, err := stdout.New(stdout.Config{Source: set.Source}, stdout.Settings{Writer: set.Stdout, Registerer: set.Registerer})
			return shared(out), err
		}),
		NewOutputFactory("file", func(set OutputSettings, path string) (Outputs, error) {
			if path == "" {
				return Outputs{}, errors.New("give the file to append JSON lines to, e.g. file:/var/log/sluice/out.jsonl")
			}
			out, err := outfile.New(outfile.Config{Path: path, Source: set.Source},
				outfile.Settings{Logger: set.Logger.With("component", "output"), Registerer: set.Registerer})
			return shared(out), err
		}),
		NewOutputFactory("null", func(set OutputSettings, _ string) (Outputs, error) {
			out, err := null.New(null.Settings{Registerer: set.Registerer})
			return shared(out), err
		}),
		NewOutputFactory("sls", func(set OutputSettings, _ string) (Outputs, error) {
			return Outputs{Provider: slsOutputs(set)}, nil
		}),
	}
}

// createOutputs finds the factory of spec's kind and creates its outputs.
func createOutputs(factories []OutputFactory, spec string, set OutputSettings) (Outputs, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	kinds := make([]string, 0, len(factories))
	for _, f := range factories {
		if f.Type() == kind {
			outs, err := f.CreateOutputs(set, arg)
			if err != nil {
				return Outputs{}, fmt.Errorf("--output %s: %w", spec, err)
			}
			return outs, nil
		}
		kinds = append(kinds, f.Type())
	}
	return Outputs{}, fmt.Errorf("--output %q: unknown kind %q: use one of %s (file takes a path: file:PATH)", spec, kind, strings.Join(kinds, ", "))
}

// slsOutputs sends each config to its logstore: one sls output (with its
// own disk buffer) per endpoint/project/logstore.
func slsOutputs(set OutputSettings) supervisor.OutputProvider {
	inst := set.Instance
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
	return &supervisor.OutputsByKey{
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
		New: func(c *logconfig.Config) (supervisor.Output, error) {
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
			return sls.New(cfg, sls.Settings{
				Logger:     set.Logger.With("component", "output", "logstore", d.ProjectName+"/"+d.LogstoreName),
				Registerer: set.Registerer, SendRate: sendRate, BufferQuota: bufferQuota,
			})
		},
	}
}
