package e2etest

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/agent/app"
	"github.com/sluicelog/sluice/agent/supervisor"
)

// AgentOptions say how to run sluice-agent. Every run polls files every
// 100 ms and stops without a stop delay unless Args say otherwise.
type AgentOptions struct {
	Bin       string // the sluice-agent binary (built by Main)
	ConfigDir string // --config-dir
	Output    string // --output: "file:PATH" or "sls"
	LogPath   string // the agent log: stdout and stderr, appended
	// ConfigPoll is --config-poll; 200 ms when zero.
	ConfigPoll time.Duration
	// ShutdownTimeout is --shutdown-timeout; 10 s when zero.
	ShutdownTimeout time.Duration
	// Args are more flags, after the ones above: a flag given again here
	// wins (e.g. --stop-delay).
	Args []string
	// Env adds environment variables (instance keys such as
	// check_point_filename, tag variables).
	Env []string
	// Wrap runs the agent through another program that must exec it (e.g.
	// unshare + mount): argv is Wrap + [Bin] + flags.
	Wrap []string
}

// Agent is one run of sluice-agent with its status port.
type Agent struct {
	*Process
	Addr string // --http-listen: /status, /healthz, /metrics
}

// StartAgent runs `sluice-agent run` as o says, on a free status port. It
// does not wait for the agent to be ready: see WaitHealthy.
func StartAgent(t testing.TB, o AgentOptions) *Agent {
	t.Helper()
	if o.ConfigPoll == 0 {
		o.ConfigPoll = 200 * time.Millisecond
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	addr := FreeAddr(t)
	argv := append(append([]string{}, o.Wrap...), o.Bin,
		"run", "--config-dir", o.ConfigDir, "--output", o.Output, "--http-listen", addr,
		"--config-poll", o.ConfigPoll.String(), "--file-poll", "100ms",
		"--stop-delay", "0s", "--shutdown-timeout", o.ShutdownTimeout.String())
	argv = append(argv, o.Args...)
	return &Agent{Process: Start(t, o.LogPath, argv, o.Env...), Addr: addr}
}

// Status asks the agent for its status.
func (a *Agent) Status() (supervisor.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return app.FetchStatus(ctx, a.Addr)
}

// ConfigStatus is the status of one collection config (zero when the agent
// does not know it or does not answer).
func (a *Agent) ConfigStatus(name string) supervisor.ConfigStatus {
	st, err := a.Status()
	if err != nil {
		return supervisor.ConfigStatus{}
	}
	for _, c := range st.Configs {
		if c.Name == name {
			return c
		}
	}
	return supervisor.ConfigStatus{}
}

// Metric sums every sample of the named metric family on the agent's
// /metrics (0 when absent).
func (a *Agent) Metric(name string) (float64, error) {
	resp, err := http.Get("http://" + a.Addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		rest, ok := strings.CutPrefix(l, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(l)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}

// WaitHealthy waits up to timeout for the agent to report itself healthy
// (what /healthz answers), failing the test with the end of the agent log
// when it does not or exits first.
func (a *Agent) WaitHealthy(timeout time.Duration) {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := a.Status()
		if err == nil && st.Healthy {
			return
		}
		if !a.Running() || time.Now().After(deadline) {
			a.t.Fatalf("sluice-agent not healthy within %s (running=%v, status error %v)\n%s",
				timeout, a.Running(), err, a.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
