package supervisor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/input/containerstdout"
)

func stdoutConfigJSON(t *testing.T, name string, detail map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"configName": name, "inputType": "plugin",
		"inputDetail": map[string]any{"plugin": map[string]any{
			"inputs": []any{map[string]any{"type": "service_docker_stdout", "detail": detail}},
		}},
		"outputDetail": map[string]any{"projectName": "p", "logstoreName": "l"},
	})
	require.NoError(t, err)
	return b
}

func TestMapDockerStdout(t *testing.T) {
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	f := newFactory(t, &collector{}, store)
	name, c, err := f.Map(stdoutConfigJSON(t, "stdout", map[string]any{
		"Stderr": false, "K8sNamespaceRegex": "^prod$", "IncludeEnv": map[string]string{"LOG": ""},
		"BeginLineRegex": `\d+-.*`, "BeginLineTimeoutMs": 1500, "ExternalK8sLabelTag": map[string]string{"app": "app"},
	}))
	require.NoError(t, err)
	require.Equal(t, "stdout", name)
	require.NotNil(t, c.Stdout)
	require.Equal(t, containerstdout.DefaultRoot, c.Stdout.Root)
	require.True(t, c.Stdout.Stdout)
	require.False(t, c.Stdout.Stderr)
	require.Equal(t, "^prod$", c.Stdout.Selector.K8sNamespaceRegex)
	require.Equal(t, map[string]string{"LOG": ""}, c.Stdout.Selector.IncludeEnv)
	require.Equal(t, 1500*time.Millisecond, c.Stdout.BeginLineTimeout)
	require.Equal(t, 512<<10, c.Stdout.MaxLogSize, "SDK default")
	require.Equal(t, 10<<10, c.Stdout.BeginLineCheckLength, "SDK default")
	require.Equal(t, "node-1", c.Process.Hostname)

	_, _, err = f.Map(stdoutConfigJSON(t, "bad", map[string]any{"Stdout": false, "Stderr": false}))
	require.ErrorContains(t, err, "Stdout and Stderr are both false")
}

func TestDockerFileNeedsPodMetadata(t *testing.T) {
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	f := newFactory(t, &collector{}, store)
	_, _, err = f.Map(configJSON(t, "df", map[string]any{"logType": "common_reg_log", "logPath": "/var/log/app",
		"filePattern": "*.log", "dockerFile": true}))
	require.ErrorContains(t, err, "pod metadata")
}

func TestStdoutPipelineEndToEnd(t *testing.T) {
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	out := &collector{}
	f := newFactory(t, out, store)
	root := t.TempDir()
	f.opts.Container.StdoutRoot = root
	dir := filepath.Join(root, "prod_web-0_uid-0", "nginx")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "0.log"), []byte(
		"2024-01-01T00:00:00Z stdout P GET /index\n2024-01-01T00:00:00Z stdout F .html 200\n"), 0o644))

	_, p, err := f.Build(stdoutConfigJSON(t, "stdout", map[string]any{}))
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background()))
	defer func() { require.NoError(t, p.Shutdown(context.Background())) }()
	require.Eventually(t, func() bool { return len(out.snapshot()) == 1 }, 10*time.Second, 10*time.Millisecond)
	ev := out.snapshot()[0]
	require.Equal(t, "GET /index.html 200", ev["content"])
	require.Equal(t, "stdout", ev["_source_"])
	require.Equal(t, "2024-01-01T00:00:00Z", ev["_time_"])
	require.Equal(t, "web-0", ev["_pod_name_"], "container metadata are log fields, as Logtail sends them")
	require.Equal(t, "nginx", ev["_container_name_"])
	require.Equal(t, "node-1", ev["__tag__:__hostname__"])
}
