// Package agenttest runs a sluice-agent in the test's process: checkpoints,
// the real pipeline factory, a JSON-lines file output, the runtime and the
// config-server client, as cmd/sluice-agent wires them with
// --config-server. Heartbeats are driven by the test (Agent.Client), so a
// test decides when configs arrive and statuses are reported.
package agenttest

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/configserver"
	"github.com/sluicelog/sluice/agent/input/file"
	outfile "github.com/sluicelog/sluice/agent/output/file"
	"github.com/sluicelog/sluice/agent/runtime"
)

// What the agent reports about its machine.
const (
	IP       = "10.1.2.3"
	Hostname = "web-host"
)

// Files the agent keeps in Options.Dir.
const (
	CheckpointFile = "checkpoint"
	OutputFile     = "out.jsonl"
	CacheFile      = "user_config.json"
)

// Options configures Start.
type Options struct {
	// Dir holds the checkpoints, the output (OutputFile) and the cached
	// configs; start again over the same Dir to restart the agent.
	Dir string
	// Endpoint is the config server (host:port or a URL).
	Endpoint string
	// AccessKeyID and AccessKeySecret sign the heartbeats.
	AccessKeyID, AccessKeySecret string
	// AllowedRoots are the directories server configs may read.
	AllowedRoots []string
	// UserDefinedIDs are the agent's machine-group ids.
	UserDefinedIDs []string
	// Version is the agent version reported ("test" when empty).
	Version string
	// Logger is the config client's logger (its default when nil).
	Logger *slog.Logger
}

// Agent is a running in-process agent; t.Cleanup stops it.
type Agent struct {
	Runtime *runtime.Agent
	Client  *configserver.Client

	tb       testing.TB
	cp       *checkpoint.Store
	out      *outfile.Output
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// Start runs an agent with o (file polls every 20ms, checkpoints every
// 100ms) and registers its shutdown, which must succeed, with tb.Cleanup.
func Start(tb testing.TB, o Options) *Agent {
	tb.Helper()
	if o.Version == "" {
		o.Version = "test"
	}
	reg := prometheus.NewRegistry()
	cp, err := checkpoint.New(checkpoint.Config{Path: filepath.Join(o.Dir, CheckpointFile), Interval: 100 * time.Millisecond},
		checkpoint.Settings{Registerer: reg})
	require.NoError(tb, err)
	require.NoError(tb, cp.Start(context.Background()))
	out, err := outfile.New(outfile.Config{Path: filepath.Join(o.Dir, OutputFile), Source: IP}, outfile.Settings{Registerer: reg})
	require.NoError(tb, err)
	require.NoError(tb, out.Start(context.Background()))
	factory, err := runtime.NewPipelineFactory(runtime.FactoryOptions{
		Checkpoints: cp, Outputs: runtime.SharedOutput{Out: out}, Hostname: Hostname,
		FileTuning: file.Config{PollInterval: 20 * time.Millisecond}, Registerer: reg,
	})
	require.NoError(tb, err)
	rt, err := runtime.New(runtime.Options{Factory: factory, Registerer: reg})
	require.NoError(tb, err)
	client, err := configserver.New(configserver.Config{
		Endpoint: o.Endpoint, AccessKeyID: o.AccessKeyID, AccessKeySecret: o.AccessKeySecret,
		Interval:  time.Hour, // heartbeats are driven by the test
		Timeout:   5 * time.Second,
		CachePath: filepath.Join(o.Dir, CacheFile),
		IP:        IP, Hostname: Hostname, UserDefinedIDs: o.UserDefinedIDs,
		Version: o.Version, AllowedRoots: o.AllowedRoots,
	}, configserver.Settings{Registerer: reg, Logger: o.Logger}, rt)
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{Runtime: rt, Client: client, tb: tb, cp: cp, out: out, cancel: cancel, done: make(chan error, 1)}
	require.NoError(tb, client.Start(ctx))
	go func() { a.done <- rt.Run(ctx, context.Background()) }()
	tb.Cleanup(a.Stop)
	return a
}

// Stop stops the runtime, then flushes the output and the checkpoints. It
// is idempotent; Start over the same Dir restarts the agent.
func (a *Agent) Stop() {
	a.stopOnce.Do(func() {
		a.cancel()
		require.NoError(a.tb, <-a.done)
		require.NoError(a.tb, a.out.Shutdown(context.Background()))
		require.NoError(a.tb, a.cp.Shutdown(context.Background()))
	})
}

// State is the runtime's status of the named config (zero when it does
// not run).
func (a *Agent) State(name string) runtime.ConfigStatus {
	for _, c := range a.Runtime.Status().Configs {
		if c.Name == name {
			return c
		}
	}
	return runtime.ConfigStatus{}
}
