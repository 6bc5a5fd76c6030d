package pvc

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/sluicelog/sluice/e2e/e2etest"
	"github.com/sluicelog/sluice/logconfig"
	"github.com/sluicelog/sluice/mocklog"
)

const exampleManifest = "../../deploy/examples/shared-pvc/shared-pvc.yaml"

// pod is one app pod of the example's Deployment: the directory its
// subPathExpr app/$(POD_NAMESPACE)_$(POD_NAME)_$(POD_IP)_$(NODE_IP)_$(NODE_NAME)
// makes on the shared volume.
type pod struct {
	namespace, name, ip, nodeIP, node string
}

func (p pod) dir() string {
	return "app/" + strings.Join([]string{p.namespace, p.name, p.ip, p.nodeIP, p.node}, "_")
}

var pods = []pod{
	{"shop", "web-7d9f8-x2k4q", "10.1.2.3", "192.168.0.7", "node-a"},
	{"shop", "web-7d9f8-p9zzm", "10.1.3.17", "192.168.0.8", "node-b"},
	{"billing", "api-5c6b7-aaaaa", "10.1.2.44", "192.168.0.7", "node-a"},
	{"default", "batch-0", "10.1.4.2", "192.168.0.9", "cn-hz.node-c"},
}

// exampleConfig returns the example's collection config with the volume's
// mount point (/var/log in the agent pod) replaced by root, in logPath and
// in the topicFormat regex; everything else is the example's.
func exampleConfig(t *testing.T, root string) []byte {
	t.Helper()
	data, err := os.ReadFile(exampleManifest)
	require.NoError(t, err)
	var raw string
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var cm struct {
			Kind     string                `json:"kind"`
			Metadata struct{ Name string } `json:"metadata"`
			Data     map[string]string     `json:"data"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(doc), &cm))
		if cm.Kind == "ConfigMap" && cm.Metadata.Name == "pvc-agent-config" {
			raw = cm.Data["pvc-access.json"]
		}
	}
	require.NotEmpty(t, raw, "ConfigMap pvc-agent-config/pvc-access.json in %s", exampleManifest)
	c, err := logconfig.Parse([]byte(raw))
	require.NoError(t, err)
	const mount, mountRe = "/var/log", `\/var\/log\/`
	require.True(t, strings.HasPrefix(c.InputDetail.LogPath, mount+"/"), "logPath %s", c.InputDetail.LogPath)
	require.True(t, strings.HasPrefix(c.InputDetail.TopicFormat, mountRe), "topicFormat %s", c.InputDetail.TopicFormat)
	c.InputDetail.LogPath = root + strings.TrimPrefix(c.InputDetail.LogPath, mount)
	c.InputDetail.TopicFormat = regexp.QuoteMeta(root) + `\/` + strings.TrimPrefix(c.InputDetail.TopicFormat, mountRe)
	out, err := logconfig.Marshal(c)
	require.NoError(t, err)
	return out
}

// TestSharedPVC: four pods write continuously while the one agent is
// stopped cleanly twice (SIGTERM), then killed (SIGKILL), each time
// restarted on the checkpoint it keeps on the shared directory, as the
// example's Deployment (strategy Recreate) does.
//
// Asserted per pod: every line delivered (no loss across all four runs);
// no line delivered twice up to the crash (clean restarts resume exactly
// at the checkpoint); after the crash, re-delivery bounded by the
// checkpoint interval; and the path tags namespace/podname/podip/nodeip/
// nodename on every line, the ones of that pod.
func TestSharedPVC(t *testing.T) {
	work := t.TempDir()
	volume := filepath.Join(work, "volume") // the PVC, mounted at /var/log in the example
	configDir := filepath.Join(work, "configs")
	require.NoError(t, os.MkdirAll(configDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(configDir, "pvc-access.json"), exampleConfig(t, volume), 0o644))
	output := filepath.Join(work, "out.jsonl")

	var gens []*e2etest.Generator
	for _, p := range pods {
		dir := filepath.Join(volume, p.dir())
		require.NoError(t, os.MkdirAll(dir, 0o755))
		gens = append(gens, e2etest.StartGenerator(t, mocklog.Options{
			LogType: mocklog.LogTypeNginx, Path: filepath.Join(dir, "access.log"),
			LogsPerSec: 400, FirstSeq: 1, Seed: uint64(len(gens) + 1),
		}))
	}

	run := func(stop func(*e2etest.Agent)) {
		a := startAgent(t, work, volume, configDir, output)
		a.WaitHealthy(20 * time.Second)
		waitGrowing(t, output)
		time.Sleep(time.Second)
		stop(a)
	}
	clean := func(a *e2etest.Agent) {
		a.Signal(syscall.SIGTERM)
		require.True(t, a.Exited(30*time.Second), "agent did not stop within 30 s of SIGTERM\n%s", a.LogTail())
		require.NoError(t, a.Err(), "agent exit\n%s", a.LogTail())
	}
	crash := func(a *e2etest.Agent) { a.Kill() }

	run(clean)
	// The checkpoint lives on the shared volume, so it follows the agent.
	require.FileExists(t, filepath.Join(volume, ".sluice-agent", "checkpoint"))
	run(clean)
	// Up to here only clean restarts: not a single line twice.
	before := readOutput(t, output, volume)
	for _, p := range pods {
		tr := before.trackers[p.name]
		require.NotNil(t, tr, "nothing collected from %s", p.dir())
		assert.Zero(t, tr.Duplicates(), "%s: lines delivered twice across clean restarts", p.name)
	}

	run(crash)
	final := startAgent(t, work, volume, configDir, output)
	final.WaitHealthy(20 * time.Second)
	var last []uint64
	for _, g := range gens {
		last = append(last, g.Stop())
	}
	require.Eventually(t, func() bool {
		got := readOutput(t, output, volume)
		for i, p := range pods {
			if tr := got.trackers[p.name]; tr == nil || tr.Count() < last[i] {
				return false
			}
		}
		return true
	}, 60*time.Second, 200*time.Millisecond, "not every line arrived\n%s", final.LogTail())
	clean(final)

	got := readOutput(t, output, volume)
	require.Empty(t, got.problems)
	for i, p := range pods {
		tr := got.trackers[p.name]
		assert.Empty(t, tr.Missing(1, last[i]), "%s: lost lines", p.name)
		assert.Equal(t, last[i], tr.Count(), "%s: lines beyond what was written", p.name)
		// A crash repeats at most what was read since the last checkpoint
		// dump (check_point_dump_interval=1 s here, at 400 lines/s) plus
		// what was in flight.
		assert.LessOrEqual(t, tr.Duplicates(), uint64(2000), "%s: re-delivered after the crash", p.name)
		t.Logf("%s: %d lines, %d re-delivered after SIGKILL", p.name, tr.Count(), tr.Duplicates())
	}
}

// collected is the file output grouped by the podname tag.
type collected struct {
	trackers map[string]*mocklog.SeqTracker
	problems []string
}

// readOutput decodes the agent's JSON lines and checks every line's path
// tags against the pod that wrote it. A line torn by SIGKILL (half a JSON
// object followed by the next run's first line) is split and skipped, as
// the file output documents.
func readOutput(t *testing.T, path, volume string) collected {
	t.Helper()
	byName := map[string]pod{}
	for _, p := range pods {
		byName[p.name] = p
	}
	res := collected{trackers: map[string]*mocklog.SeqTracker{}}
	e2etest.ScanOutput(t, path, func(rec []byte) {
		var m map[string]any
		if json.Unmarshal(rec, &m) != nil {
			return // torn by SIGKILL
		}
		str := func(k string) string { s, _ := m[k].(string); return s }
		p, ok := byName[str("__tag__:podname")]
		if !ok {
			res.problems = append(res.problems, fmt.Sprintf("line without a known podname tag: %s", rec))
			return
		}
		want := map[string]string{"namespace": p.namespace, "podname": p.name, "podip": p.ip,
			"nodeip": p.nodeIP, "nodename": p.node, "app": "app"}
		for k, v := range want {
			if got := str("__tag__:" + k); got != v {
				res.problems = append(res.problems, fmt.Sprintf("%s: tag %s = %q, want %q", p.name, k, got, v))
			}
		}
		if got, want := str("__tag__:__path__"), filepath.Join(volume, p.dir(), "access.log"); got != want {
			res.problems = append(res.problems, fmt.Sprintf("%s: __path__ %q, want %q", p.name, got, want))
		}
		tr := res.trackers[p.name]
		if tr == nil {
			tr = &mocklog.SeqTracker{}
			res.trackers[p.name] = tr
		}
		if !tr.AddLine([]byte(str("content"))) {
			res.problems = append(res.problems, fmt.Sprintf("%s: content without a sequence number: %q", p.name, str("content")))
		}
	})
	if len(res.problems) > 10 {
		res.problems = append(res.problems[:10], fmt.Sprintf("… %d more", len(res.problems)-10))
	}
	return res
}

func waitGrowing(t *testing.T, path string) {
	t.Helper()
	size := func() int64 {
		st, err := os.Stat(path)
		if err != nil {
			return 0
		}
		return st.Size()
	}
	start := size()
	require.Eventually(t, func() bool { return size() > start }, 30*time.Second, 50*time.Millisecond,
		"the agent delivers nothing")
}

// startAgent runs the agent as the example's Deployment runs it:
// --ignore-device, checkpoint and buffer on the shared volume.
func startAgent(t *testing.T, work, volume, configDir, output string) *e2etest.Agent {
	t.Helper()
	return e2etest.StartAgent(t, e2etest.AgentOptions{
		Bin: agentBin, ConfigDir: configDir, Output: "file:" + output,
		LogPath: filepath.Join(work, "agent.log"), ShutdownTimeout: 20 * time.Second,
		Args: []string{"--ignore-device"},
		Env: []string{
			"check_point_filename=" + filepath.Join(volume, ".sluice-agent", "checkpoint"),
			"check_point_dump_interval=1",
			"buffer_file_path=" + filepath.Join(volume, ".sluice-agent", "buffer")},
	})
}
