// Package e2e runs the real sluice-agent binary against real files written by
// mocklog and checks what a user would notice: every line delivered across
// restarts, crashes, rotations and config changes, clear status for broken
// configs, and a bounded stop. The binaries are built once per test run.
package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/e2e/e2etest"
)

// agentBin is the sluice-agent binary built by TestMain.
var agentBin string

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, map[string]*string{"sluice-agent": &agentBin}))
}

// agentOpts are what the tests of this package vary between agent runs;
// the checkpoint's directory also holds the disk buffer and agent.log.
type agentOpts struct {
	configDir  string
	output     string // file path
	checkpoint string
	args       []string // extra flags
	// wrap runs the agent through another program (unshare + mount), which
	// must exec it: argv is wrap + [agentBin] + flags.
	wrap []string
}

// startAgent runs the agent with the file output, saving its checkpoint
// every second.
func startAgent(t *testing.T, o agentOpts) *e2etest.Agent {
	t.Helper()
	state := filepath.Dir(o.checkpoint)
	return e2etest.StartAgent(t, e2etest.AgentOptions{
		Bin: agentBin, ConfigDir: o.configDir, Output: "file:" + o.output,
		LogPath: filepath.Join(state, "agent.log"), Args: o.args, Wrap: o.wrap,
		Env: []string{"check_point_filename=" + o.checkpoint, "check_point_dump_interval=1",
			"buffer_file_path=" + filepath.Join(state, "buffer")},
	})
}

// fileConfig is a Logtail collection config for the files matching pattern
// in dir, whole lines into "content" (the SDK's simple mode).
func fileConfig(name, dir, pattern string, extra map[string]any) []byte {
	detail := map[string]any{
		"logType": "common_reg_log", "logPath": dir, "filePattern": pattern,
		"regex": "(.*)", "key": []string{"content"}, "logBeginRegex": ".*",
	}
	for k, v := range extra {
		detail[k] = v
	}
	b, err := json.Marshal(map[string]any{
		"configName": name, "inputType": "file", "inputDetail": detail,
		"outputType":   "LogService",
		"outputDetail": map[string]any{"projectName": "e2e", "logstoreName": name},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// writeConfig replaces a config file atomically (as kubelet updates a
// ConfigMap volume), so the agent never reads half a file.
func writeConfig(t *testing.T, dir, file string, data []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+file+".tmp")
	require.NoError(t, os.WriteFile(tmp, data, 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, file)))
}

// outputLine is what the tests look at in one JSON line of the file output.
type outputLine struct {
	Topic   string `json:"__topic__"`
	Path    string `json:"__tag__:__path__"`
	Content string `json:"content"`
}

// readOutput decodes the file output, skipping records torn by SIGKILL.
func readOutput(t *testing.T, path string) []outputLine {
	t.Helper()
	var out []outputLine
	e2etest.ScanOutput(t, path, func(rec []byte) {
		var l outputLine
		if json.Unmarshal(rec, &l) == nil {
			out = append(out, l)
		}
	})
	return out
}

// agentLog is the end of the agent log in dir, for failure messages.
func agentLog(dir string) string { return e2etest.Tail(filepath.Join(dir, "agent.log")) }

// agentWarnings returns the WARN and ERROR lines of the agent log.
func agentWarnings(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			keep = append(keep, l)
		}
	}
	if len(keep) > 40 {
		keep = append(keep[:40], fmt.Sprintf("… %d more", len(keep)-40))
	}
	return strings.Join(keep, "\n")
}
