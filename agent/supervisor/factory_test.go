package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/input/file"
	"github.com/sluicelog/sluice/agent/parse"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/logconfig"
)

// collector is an output that keeps what it receives.
type collector struct {
	mu     sync.Mutex
	events []map[string]string
}

func (c *collector) Consume(_ context.Context, b *pipeline.Batch) error {
	c.mu.Lock()
	for _, e := range b.Events {
		m := map[string]string{"__topic__": b.Topic}
		for _, t := range b.Tags {
			m["__tag__:"+t.Key] = t.Value
		}
		for _, f := range e.Fields {
			m[f.Key] = f.Value
		}
		c.events = append(c.events, m)
	}
	c.mu.Unlock()
	if b.Ack != nil {
		b.Ack.Done(nil)
	}
	return nil
}

func (c *collector) snapshot() []map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]string(nil), c.events...)
}

func configJSON(t *testing.T, name string, detail map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"configName": name, "inputType": "file", "inputDetail": detail,
		"outputDetail": map[string]any{"projectName": "p", "logstoreName": "l"},
	})
	require.NoError(t, err)
	return b
}

func newFactory(t *testing.T, out pipeline.Consumer, store *checkpoint.Store) *PipelineFactory {
	t.Helper()
	inst, err := logconfig.LoadInstance("", func(k string) string {
		return map[string]string{
			logconfig.EnvUserDefinedID: "group-a,group-b",
			logconfig.EnvTags:          "_pod_name_|_node_ip_",
			"_pod_name_":               "web-0",
		}[k]
	})
	require.NoError(t, err)
	f, err := NewPipelineFactory(FactoryOptions{
		Instance: inst, Checkpoints: store, Outputs: SharedOutput{Out: out}, Hostname: "node-1",
		FileTuning: file.Config{PollInterval: 20 * time.Millisecond, FlushTimeout: 100 * time.Millisecond},
		Registerer: prometheus.NewRegistry(),
	})
	require.NoError(t, err)
	return f
}

func TestMapLogtailConfig(t *testing.T) {
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	f := newFactory(t, &collector{}, store)

	name, c, err := f.Map(configJSON(t, "nginx", map[string]any{
		"logType": "common_reg_log", "logPath": "/var/log/nginx", "filePattern": "access*.log",
		"regex": parse.NginxRegex, "key": parse.NginxKeys, "timeKey": "time_local", "timeFormat": parse.NginxTimeFormat,
		"topicFormat": `/var/log/(\w+)/.*`, "maxDepth": 2, "discardUnmatch": false, "tailExisted": true,
		"filterKey": []string{"status"}, "filterRegex": []string{"5\\d\\d"},
		"advanced": map[string]any{"tail_size_kb": 64, "blacklist": map[string]any{"filename_blacklist": []string{"*.gz"}}},
	}))
	require.NoError(t, err)
	require.Equal(t, "nginx", name)
	require.Equal(t, "/var/log/nginx", c.File.LogPath)
	require.Equal(t, "access*.log", c.File.FilePattern)
	require.Equal(t, 2, c.File.MaxDepth)
	require.Equal(t, 64, c.File.TailSizeKB)
	require.True(t, c.File.TailExisted)
	require.Equal(t, `/var/log/(\w+)/.*`, c.File.TopicFormat)
	require.Equal(t, []string{"*.gz"}, c.File.FilenameBlacklist)
	require.Equal(t, parse.Regex, c.Parse.LogType)
	require.Equal(t, parse.NginxKeys, c.Parse.Keys)
	require.False(t, c.Parse.DiscardUnmatch)
	require.Equal(t, []string{"status"}, c.Process.FilterKey)
	require.Equal(t, "node-1", c.Process.Hostname)
	require.Equal(t, "group-a,group-b", c.Process.UserDefinedID)
	require.Equal(t, []pipeline.Field{{Key: "_pod_name_", Value: "web-0"}, {Key: "_node_ip_", Value: ""}}, c.Process.EnvTags)

	// The SDK's simple mode is kept raw (no regex run); defaults applied.
	_, c, err = f.Map(configJSON(t, "simple", map[string]any{"logType": "common_reg_log", "logPath": "/logs", "filePattern": "*.log"}))
	require.NoError(t, err)
	require.Equal(t, parse.None, c.Parse.LogType)
	require.Equal(t, logconfig.DefaultMaxDepth, c.File.MaxDepth)
	require.Equal(t, logconfig.DefaultTailLimitKB, c.File.TailSizeKB)
	require.True(t, c.Parse.DiscardUnmatch, "discardUnmatch defaults to true, as the SDK fills it")

	// Validation errors come back as logconfig words them, with the name.
	name, _, err = f.Map(configJSON(t, "broken", map[string]any{"logType": "common_reg_log", "logPath": "/logs", "filePattern": "*.log", "regex": "(x", "key": []string{"a"}}))
	require.Equal(t, "broken", name)
	require.ErrorContains(t, err, `inputDetail.regex: invalid regular expression "(x": missing closing )`)

	// Container stdout is a plugin config (see container_test.go); other plugin inputs are refused.
	_, c, err = f.Map([]byte(`{"configName":"std","inputType":"plugin","inputDetail":{"plugin":{"inputs":[{"type":"service_docker_stdout"}]}},"outputDetail":{"projectName":"p","logstoreName":"l"}}`))
	require.NoError(t, err)
	require.NotNil(t, c.Stdout)
	_, _, err = f.Map([]byte(`{"configName":"mq","inputType":"plugin","inputDetail":{"plugin":{"inputs":[{"type":"service_kafka"}]}},"outputDetail":{"projectName":"p","logstoreName":"l"}}`))
	require.ErrorContains(t, err, `"service_kafka" is not supported`)
}

func TestPipelineCollectsWithTagsAndResumesAfterChange(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	require.NoError(t, os.MkdirAll(logs, 0o755))
	path := filepath.Join(logs, "app.log")
	require.NoError(t, os.WriteFile(path, []byte("INFO one\nWARN two\n"), 0o644))
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	out := &collector{}
	f := newFactory(t, out, store)
	ctx := context.Background()

	detail := map[string]any{"logType": "common_reg_log", "logPath": logs, "filePattern": "*.log",
		"regex": `(\w+) (.*)`, "key": []string{"level", "msg"}, "topicFormat": "customized://v1"}
	_, p, err := f.Build(configJSON(t, "app", detail))
	require.NoError(t, err)
	require.NoError(t, p.Start(ctx))
	require.Eventually(t, func() bool { return len(out.snapshot()) == 2 }, 5*time.Second, 10*time.Millisecond)
	e := out.snapshot()[0]
	require.Equal(t, map[string]string{
		"__topic__": "v1", "__tag__:__path__": path, "__tag__:__hostname__": "node-1",
		"__tag__:__user_defined_id__": "group-a,group-b", "__tag__:_pod_name_": "web-0", "__tag__:_node_ip_": "",
		"level": "INFO", "msg": "one",
	}, e)
	require.NoError(t, p.Shutdown(ctx))

	// The changed config (same name) resumes: the old lines are not read again.
	detail["topicFormat"] = "customized://v2"
	_, p2, err := f.Build(configJSON(t, "app", detail))
	require.NoError(t, err)
	require.NoError(t, p2.Start(ctx))
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fh.WriteString("ERROR three\n")
	require.NoError(t, err)
	require.NoError(t, fh.Close())
	require.Eventually(t, func() bool { return len(out.snapshot()) == 3 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	got := out.snapshot()
	require.Len(t, got, 3)
	require.Equal(t, "three", got[2]["msg"])
	require.Equal(t, "v2", got[2]["__topic__"])
	require.NoError(t, p2.Shutdown(ctx))

	// Removing the config forgets its positions.
	f.Forget("app")
	require.Empty(t, store.Entries("app"))
}

type countingOutput struct {
	collector
	starts, stops int
}

func (o *countingOutput) Start(context.Context) error    { o.starts++; return nil }
func (o *countingOutput) Shutdown(context.Context) error { o.stops++; return nil }

func TestOutputsByKeyShareAndStopWithLastUser(t *testing.T) {
	built := map[string]*countingOutput{}
	p := &OutputsByKey{
		Key: func(c *logconfig.Config) (string, error) { return c.OutputDetail.LogstoreName, nil },
		New: func(c *logconfig.Config) (Output, error) {
			o := &countingOutput{}
			built[c.OutputDetail.LogstoreName] = o
			return o, nil
		},
	}
	ctx := context.Background()
	cfg := func(ls string) *logconfig.Config {
		return &logconfig.Config{OutputDetail: logconfig.OutputDetail{LogstoreName: ls}}
	}
	a, relA, err := p.Acquire(ctx, cfg("access"))
	require.NoError(t, err)
	b, relB, err := p.Acquire(ctx, cfg("access"))
	require.NoError(t, err)
	require.Same(t, a, b)
	_, relC, err := p.Acquire(ctx, cfg("errors"))
	require.NoError(t, err)
	require.Len(t, built, 2)

	require.NoError(t, relA(ctx))
	require.NoError(t, relA(ctx)) // idempotent
	require.Zero(t, built["access"].stops, "still used by another config")
	require.NoError(t, relB(ctx))
	require.Equal(t, 1, built["access"].stops)
	require.NoError(t, relC(ctx))
	require.Equal(t, 1, built["errors"].starts)
	require.Equal(t, 1, built["errors"].stops)
}

// A parse failure is logged once with the config's name: the pipeline's
// logger already carries config=, so the parser must not add it again (it
// did: two "config" keys in one JSON log line).
func TestParseFailureLogNamesConfigOnce(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.log"), []byte("not matching\n"), 0o644))
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	var logs syncBuffer
	out := &collector{}
	f, err := NewPipelineFactory(FactoryOptions{
		Instance: logconfig.NewDefaultInstance(), Checkpoints: store, Outputs: SharedOutput{Out: out},
		FileTuning: file.Config{PollInterval: 20 * time.Millisecond, FlushTimeout: 100 * time.Millisecond},
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	require.NoError(t, err)
	detail := map[string]any{"logType": "common_reg_log", "logPath": dir, "filePattern": "*.log",
		"regex": `(\d+) (.*)`, "key": []string{"n", "msg"}}
	_, p, err := f.Build(configJSON(t, "app", detail))
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background()))
	defer func() { require.NoError(t, p.Shutdown(context.Background())) }()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "parse failure") }, 5*time.Second, 10*time.Millisecond)
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(line, "parse failure") {
			require.Equal(t, 1, strings.Count(line, `"config":`), line)
			require.Contains(t, line, `"config":"app"`)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTopicRegexThatMatchesNothingIsAStatusWarning: guide 003's topicFormat
// as its page source prints it ('.\*?', a literal '*') matches no file, so
// its logs silently lose the topic and path tags; the config's status says
// so. The regex as the page renders it tags every line.
func TestTopicRegexThatMatchesNothingIsAStatusWarning(t *testing.T) {
	root := t.TempDir()
	pod := filepath.Join(root, "var", "log", "nginx", "default_web-0_10.1.0.5_192.168.0.10_node-a")
	require.NoError(t, os.MkdirAll(pod, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pod, "access.log"), []byte("GET /\n"), 0o644))
	const groups = `\/(?P<namespace>[^_]+?)_(?P<podname>[^_]+?)_(?P<podip>[\d\.]+?)_(?P<nodeip>[\d\.]+?)_(?P<nodename>[^_]+?)\/access.log`
	for _, c := range []struct {
		name, app string
		matches   bool
	}{
		{"rendered", `(?P<app>.*?)`, true},
		{"as-printed", `(?P<app>.\*?)`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
			require.NoError(t, err)
			out := &collector{}
			dir := t.TempDir()
			a, err := New(Options{ConfigDir: dir, Factory: newFactory(t, out, store), Registerer: prometheus.NewRegistry()})
			require.NoError(t, err)
			ctx := context.Background()
			topic := regexp.QuoteMeta(root) + `\/var\/log\/` + c.app + groups
			require.NoError(t, os.WriteFile(filepath.Join(dir, "pvc.json"), configJSON(t, "pvc", map[string]any{
				"logType": "common_reg_log", "logPath": filepath.Join(root, "var", "log", "nginx"), "filePattern": "access.log",
				"maxDepth": 2, "topicFormat": topic}), 0o644))
			a.Sync(ctx)
			t.Cleanup(func() { a.StopAll(ctx) })
			require.Eventually(t, func() bool { return len(out.snapshot()) == 1 }, 10*time.Second, 10*time.Millisecond)
			st := statusOf(a, "pvc")
			require.Equal(t, StateRunning, st.State, st.Message)
			e := out.snapshot()[0]
			if c.matches {
				require.Empty(t, st.Warnings)
				require.Equal(t, "nginx_default_web-0_10.1.0.5_192.168.0.10_node-a", e["__topic__"])
				require.Equal(t, "web-0", e["__tag__:podname"])
				require.Equal(t, "node-a", e["__tag__:nodename"])
				return
			}
			require.Len(t, st.Warnings, 1)
			require.Contains(t, st.Warnings[0], "topicFormat matches none of the 1 files collected (e.g. "+filepath.Join(pod, "access.log")+")")
			require.Empty(t, e["__topic__"])
			require.Empty(t, e["__tag__:podname"])
		})
	}
}
