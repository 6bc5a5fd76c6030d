package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder builds pipelines from {"configName":..,"broken":".."} and records
// the order of starts and stops, which is what the agent's guarantees are
// about (the real pipelines are tested in their packages and end to end).
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.events = append(r.events, s); r.mu.Unlock() }
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

type fakePipeline struct {
	r       *recorder
	name    string
	version string
}

func (p *fakePipeline) Start(context.Context) error {
	p.r.add("start " + p.name + "@" + p.version)
	return nil
}
func (p *fakePipeline) Shutdown(context.Context) error {
	p.r.add("stop " + p.name + "@" + p.version)
	return nil
}

func (r *recorder) Build(data []byte) (string, Pipeline, error) {
	var c struct {
		ConfigName string `json:"configName"`
		Version    string `json:"version"`
		Broken     string `json:"broken"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return "", nil, err
	}
	if c.Broken != "" {
		return c.ConfigName, nil, errors.New(c.Broken)
	}
	return c.ConfigName, &fakePipeline{r: r, name: c.ConfigName, version: c.Version}, nil
}

func write(t *testing.T, dir, file, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644))
}

func statusOf(a *Agent, name string) ConfigStatus {
	for _, c := range a.Status().Configs {
		if c.Name == name {
			return c
		}
	}
	return ConfigStatus{}
}

func TestAgentAppliesChangesAndKeepsOthersRunning(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	a, err := New(Options{ConfigDir: dir, Factory: rec, Registerer: reg})
	require.NoError(t, err)
	ctx := context.Background()

	write(t, dir, "access.json", `{"configName":"access","version":"1"}`)
	write(t, dir, "error.json", `{"configName":"error","version":"1"}`)
	write(t, dir, "notes.txt", `not a config`)
	a.Sync(ctx)
	require.ElementsMatch(t, []string{"start access@1", "start error@1"}, rec.take())
	require.True(t, a.Status().Healthy)

	// Unchanged files are not re-applied.
	a.Sync(ctx)
	require.Empty(t, rec.take())

	// A changed config: the old version stops before the new one starts, so
	// the new one resumes from the old one's final checkpoints.
	write(t, dir, "access.json", `{"configName":"access","version":"2"}`)
	a.Sync(ctx)
	require.Equal(t, []string{"stop access@1", "start access@2"}, rec.take())

	// A broken edit is reported; the previous version keeps collecting and the
	// other config is untouched.
	write(t, dir, "error.json", `{"configName":"error","broken":"inputDetail.regex: missing closing )"}`)
	a.Sync(ctx)
	require.Empty(t, rec.take())
	st := statusOf(a, "error")
	require.Equal(t, StateFailed, st.State)
	require.Contains(t, st.Message, "inputDetail.regex: missing closing )")
	require.Contains(t, st.Message, "previous version of this config keeps collecting")
	require.Equal(t, StateRunning, statusOf(a, "access").State)

	// Garbage bytes name the file.
	write(t, dir, "garbage.json", "\x00\xff{")
	a.Sync(ctx)
	require.Equal(t, StateFailed, statusOf(a, "garbage").State)

	// Two files claiming the same name: the second is refused.
	write(t, dir, "zz-dup.json", `{"configName":"access","version":"9"}`)
	a.Sync(ctx)
	require.Empty(t, rec.take())
	require.Contains(t, statusOf(a, "access").Message, "already used by")

	// Fixing the broken config replaces the old version.
	require.NoError(t, os.Remove(filepath.Join(dir, "zz-dup.json")))
	write(t, dir, "error.json", `{"configName":"error","version":"2"}`)
	a.Sync(ctx)
	require.Equal(t, []string{"stop error@1", "start error@2"}, rec.take())

	// A vanished directory (ConfigMap remount) keeps collection running.
	moved := dir + ".moved"
	require.NoError(t, os.Rename(dir, moved))
	a.Sync(ctx)
	require.Empty(t, rec.take())
	require.NotEmpty(t, a.Status().DirError)
	require.NoError(t, os.Rename(moved, dir))

	// Removing a file stops its config.
	require.NoError(t, os.Remove(filepath.Join(dir, "access.json")))
	a.Sync(ctx)
	require.Equal(t, []string{"stop access@2"}, rec.take())
	require.Empty(t, statusOf(a, "access").Name)

	require.NoError(t, a.StopAll(ctx))
	require.Equal(t, []string{"stop error@2"}, rec.take())

	mf, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, f := range mf {
		names = append(names, f.GetName())
	}
	require.Contains(t, names, "sluice_agent_configs")
	require.Contains(t, names, "sluice_agent_config_applies_total")
}
