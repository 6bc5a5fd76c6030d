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

// stdoutFactory is a factory whose stdout root holds one container log
// (pod web-0 in namespace prod) with content, and the collector it feeds.
func stdoutFactory(t *testing.T, container, content string) (*PipelineFactory, *collector) {
	t.Helper()
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	out := &collector{}
	f := newFactory(t, out, store)
	root := t.TempDir()
	f.opts.Container.StdoutRoot = root
	dir := filepath.Join(root, "prod_web-0_uid-0", container)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "0.log"), []byte(content), 0o644))
	return f, out
}

func TestStdoutPipelineEndToEnd(t *testing.T) {
	f, out := stdoutFactory(t, "nginx",
		"2024-01-01T00:00:00Z stdout P GET /index\n2024-01-01T00:00:00Z stdout F .html 200\n")

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

// The guides (000, 002) parse container stdout with plugin processors: the
// events reach the output parsed and filtered, not as collected.
func TestStdoutPluginProcessorsRun(t *testing.T) {
	f, out := stdoutFactory(t, "app",
		`2024-01-01T00:00:00Z stdout F {"level":"info","msg":"started","port":8080}`+"\n"+
			`2024-01-01T00:00:01Z stdout F {"level":"debug","msg":"noise"}`+"\n"+
			`2024-01-01T00:00:02Z stdout F not json at all`+"\n")

	b, err := json.Marshal(map[string]any{
		"configName": "stdout-json", "inputType": "plugin",
		"inputDetail": map[string]any{"plugin": map[string]any{
			"inputs": []any{map[string]any{"type": "service_docker_stdout", "detail": map[string]any{}}},
			"processors": []any{
				map[string]any{"type": "processor_json", "detail": map[string]any{"SourceKey": "content", "KeepSource": false, "KeepSourceIfParseError": true}},
				map[string]any{"type": "processor_filter_regex", "detail": map[string]any{"Exclude": map[string]string{"level": "debug"}}},
			},
		}},
		"outputDetail": map[string]any{"projectName": "p", "logstoreName": "l"},
	})
	require.NoError(t, err)
	_, p, err := f.Build(b)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background()))
	defer func() { require.NoError(t, p.Shutdown(context.Background())) }()
	require.Eventually(t, func() bool { return len(out.snapshot()) == 2 }, 10*time.Second, 10*time.Millisecond)
	evs := out.snapshot()
	require.Equal(t, "info", evs[0]["level"])
	require.Equal(t, "started", evs[0]["msg"])
	require.Equal(t, "8080", evs[0]["port"])
	require.NotContains(t, evs[0], "content", "KeepSource false")
	require.Equal(t, "web-0", evs[0]["_pod_name_"], "container fields stay")
	require.Equal(t, "not json at all", evs[1]["content"], "kept as collected when it is not JSON (KeepSourceIfParseError)")
	require.Equal(t, "node-1", evs[1]["__tag__:__hostname__"], "processing (tags) still runs after the plugin processors")
}

// File configs may carry extra plugin processors (inputDetail.plugin
// without inputs): they run on the parsed events.
func TestFilePluginProcessorsRun(t *testing.T) {
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	out := &collector{}
	f := newFactory(t, out, store)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.log"), []byte("a=1|b=2\n"), 0o644))
	_, p, err := f.Build(configJSON(t, "file-plugin", map[string]any{
		"logType": "common_reg_log", "logPath": dir, "filePattern": "app.log", "tailExisted": true,
		"plugin": map[string]any{"processors": []any{
			map[string]any{"type": "processor_split_char", "detail": map[string]any{"SourceKey": "content", "SplitSep": "|", "SplitKeys": []string{"first", "second"}}},
			map[string]any{"type": "processor_add_fields", "detail": map[string]any{"Fields": map[string]string{"team": "web"}}},
		}},
	}))
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background()))
	defer func() { require.NoError(t, p.Shutdown(context.Background())) }()
	require.Eventually(t, func() bool { return len(out.snapshot()) == 1 }, 10*time.Second, 10*time.Millisecond)
	ev := out.snapshot()[0]
	require.Equal(t, "a=1", ev["first"])
	require.Equal(t, "b=2", ev["second"])
	require.Equal(t, "web", ev["team"])
}

// A processor this agent does not run is refused with the ones it does.
func TestUnknownPluginProcessorIsRefused(t *testing.T) {
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	f := newFactory(t, &collector{}, store)
	b, err := json.Marshal(map[string]any{
		"configName": "stdout-geo", "inputType": "plugin",
		"inputDetail": map[string]any{"plugin": map[string]any{
			"inputs":     []any{map[string]any{"type": "service_docker_stdout", "detail": map[string]any{}}},
			"processors": []any{map[string]any{"type": "processor_geoip", "detail": map[string]any{}}},
		}},
		"outputDetail": map[string]any{"projectName": "p", "logstoreName": "l"},
	})
	require.NoError(t, err)
	_, _, err = f.Map(b)
	require.ErrorContains(t, err, "processor_geoip")
	require.ErrorContains(t, err, "processor_json")
}
