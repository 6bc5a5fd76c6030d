package pvc

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/sluicelog/sluice/e2e/e2etest"
	"github.com/sluicelog/sluice/logconfig"
	"github.com/sluicelog/sluice/mocklog"
)

// exampleFileConfig returns the collection config stored under key in a
// ConfigMap of an example manifest.
func exampleFileConfig(t *testing.T, manifest, key string) *logconfig.Config {
	t.Helper()
	data, err := os.ReadFile(manifest)
	require.NoError(t, err)
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var cm struct {
			Kind string            `json:"kind"`
			Data map[string]string `json:"data"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(doc), &cm))
		if raw, ok := cm.Data[key]; ok && cm.Kind == "ConfigMap" {
			c, err := logconfig.Parse([]byte(raw))
			require.NoError(t, err)
			return c
		}
	}
	t.Fatalf("no ConfigMap key %s in %s", key, manifest)
	return nil
}

// TestSidecarExampleConfigsParse runs the real agent with the sidecar
// examples' configs (only logPath moved to a temporary directory) on the
// lines their app containers write (mocklog), and checks the fields and
// the event time a user queries come out: the regex, keys and timeFormat
// of the examples fit the logs.
func TestSidecarExampleConfigsParse(t *testing.T) {
	for _, tc := range []struct {
		manifest, key, logType, file string
		check                        func(t *testing.T, rec map[string]any)
	}{
		{"../../deploy/examples/sidecar/deployment.yaml", "nginx-access.json", mocklog.LogTypeNginx, "access.log",
			func(t *testing.T, rec map[string]any) {
				for _, k := range []string{"remote_addr", "method", "url", "protocol", "status", "body_bytes_sent", "http_user_agent", "request_time"} {
					assert.NotEmpty(t, rec[k], "field %s in %v", k, rec)
				}
				assert.Contains(t, rec["url"], "seq=")
				assert.NotContains(t, rec, "content", "parsed, not raw")
			}},
		{"../../deploy/examples/sidecar/job-native-sidecar.yaml", "batch.json", mocklog.LogTypeJSON, "run.log",
			func(t *testing.T, rec map[string]any) {
				for _, k := range []string{"seq", "level", "msg", "logger"} {
					assert.NotEmpty(t, rec[k], "field %s in %v", k, rec)
				}
			}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			work := t.TempDir()
			logDir := filepath.Join(work, "logs")
			configDir := filepath.Join(work, "configs")
			require.NoError(t, os.MkdirAll(logDir, 0o755))
			require.NoError(t, os.MkdirAll(configDir, 0o755))
			c := exampleFileConfig(t, tc.manifest, tc.key)
			c.InputDetail.LogPath = logDir
			raw, err := logconfig.Marshal(c)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(configDir, tc.key), raw, 0o644))

			// Event times an hour back, so the parsed time is told apart
			// from the collection time.
			eventTime := time.Now().Add(-time.Hour).Truncate(time.Second)
			const n = 200
			g := e2etest.StartGenerator(t, mocklog.Options{LogType: tc.logType, Path: filepath.Join(logDir, tc.file),
				TotalCount: n, FirstSeq: 1, Now: func() time.Time { return eventTime }})
			require.Equal(t, uint64(n), g.Wait())

			output := filepath.Join(work, "out.jsonl")
			a := startAgent(t, work, work, configDir, output)
			a.WaitHealthy(20 * time.Second)
			var recs []map[string]any
			require.Eventually(t, func() bool {
				recs = readRecords(t, output)
				return len(recs) >= n
			}, 30*time.Second, 100*time.Millisecond, "agent log:\n%s", a.LogTail())
			a.Signal(os.Interrupt)
			require.True(t, a.Exited(30*time.Second))

			require.Len(t, recs, n)
			tr := &mocklog.SeqTracker{}
			for _, rec := range recs {
				tc.check(t, rec)
				ts, _ := rec["__time__"].(float64)
				assert.Equal(t, eventTime.Unix(), int64(ts), "__time__ is the time in the line (timeFormat), not the collection time")
				line, _ := json.Marshal(rec)
				if s, ok := rec["seq"].(string); ok { // json_log: the parsed "seq" field
					seq, err := strconv.ParseUint(s, 10, 64)
					require.NoError(t, err)
					tr.Add(seq)
				} else {
					tr.AddLine(line)
				}
				if t.Failed() {
					t.Logf("record: %s", line)
					return
				}
			}
			assert.Empty(t, tr.Missing(1, n))
		})
	}
}

// readRecords decodes the file output; every record must be whole JSON
// (the agent is not killed here).
func readRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	e2etest.ScanOutput(t, path, func(rec []byte) {
		if len(bytes.TrimSpace(rec)) == 0 {
			return
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(rec, &m), "output line %q", rec)
		out = append(out, m)
	})
	return out
}
