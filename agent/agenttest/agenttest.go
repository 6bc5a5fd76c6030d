// Package agenttest runs a sluice-agent in the test's process, assembled by
// agent/app as cmd/sluice-agent assembles it with --config-server and a
// JSON-lines file output. Heartbeats are driven by the test (Agent.Client),
// so a test decides when configs arrive and statuses are reported.
package agenttest

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/app"
	"github.com/sluicelog/sluice/agent/configclient"
	"github.com/sluicelog/sluice/agent/supervisor"
	"github.com/sluicelog/sluice/logconfig"
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
	Runtime *supervisor.Agent
	Client  *configclient.Client

	tb       testing.TB
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
	inst := logconfig.NewDefaultInstance()
	inst.AccessKeyID, inst.AccessKeySecret = o.AccessKeyID, o.AccessKeySecret
	inst.UserDefinedIDs = o.UserDefinedIDs
	inst.CheckPointFilename = filepath.Join(o.Dir, CheckpointFile)
	inst.UserConfigFilePath = filepath.Join(o.Dir, CacheFile)
	a, err := app.New(app.Config{
		Output:             "file:" + filepath.Join(o.Dir, OutputFile),
		Instance:           inst,
		CheckpointInterval: 100 * time.Millisecond,
		FilePoll:           20 * time.Millisecond,
		ConfigServer:       o.Endpoint,
		AllowedRoots:       o.AllowedRoots,
	}, app.Settings{Logger: o.Logger, IP: IP, Hostname: Hostname, Version: o.Version, ManualHeartbeats: true})
	require.NoError(tb, err)
	// Start loads the config client's cache (instance id, configs last
	// received) before the test's first heartbeat.
	require.NoError(tb, a.Start(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	ag := &Agent{Runtime: a.Runtime(), Client: a.ConfigClient(), tb: tb, cancel: cancel, done: make(chan error, 1)}
	go func() { ag.done <- a.Run(ctx, nil) }()
	tb.Cleanup(ag.Stop)
	return ag
}

// Stop stops the agent: the runtime, then the output and the checkpoints.
// It is idempotent; Start over the same Dir restarts the agent.
func (a *Agent) Stop() {
	a.stopOnce.Do(func() {
		a.cancel()
		require.NoError(a.tb, <-a.done)
	})
}

// State is the runtime's status of the named config (zero when it does
// not run).
func (a *Agent) State(name string) supervisor.ConfigStatus {
	for _, c := range a.Runtime.Status().Configs {
		if c.Name == name {
			return c
		}
	}
	return supervisor.ConfigStatus{}
}
