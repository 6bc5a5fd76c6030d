package configclient

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/supervisor"
	"github.com/sluicelog/sluice/logconfig"
)

func fileCfg(logPath, pattern string) []byte {
	b, _ := json.Marshal(map[string]any{"configName": "c", "inputType": "file",
		"inputDetail": map[string]any{"logType": "common_reg_log", "logPath": logPath, "filePattern": pattern}})
	return b
}

func TestCheckPaths(t *testing.T) {
	root := t.TempDir()
	roots := []string{root, "/var/log"}
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "escape")))
	require.NoError(t, os.Symlink(filepath.Join(root, "real"), filepath.Join(root, "inside-link")))
	require.NoError(t, os.Mkdir(filepath.Join(root, "real"), 0o755))

	for _, tc := range []struct {
		name, logPath, pattern, want string
	}{
		{"root itself", root, "*.log", ""},
		{"below a root", filepath.Join(root, "app", "x"), "*.log", ""},
		{"wildcard dir", "/var/log/*/app", "*.log", ""},
		{"symlink staying inside", filepath.Join(root, "inside-link"), "*.log", ""},
		{"etc", "/etc", "shadow", `inputDetail.logPath "/etc" is outside the directories this agent collects from`},
		{"dot-dot", "/var/log/../../etc", "*", "is outside the directories"},
		{"prefix is not a parent", "/var/logs-secret", "*.log", "is outside the directories"},
		{"relative", "var/log", "*.log", "use an absolute directory"},
		{"pattern with a path", "/var/log", "../../etc/shadow", "must be a file name pattern"},
		{"symlink leading out", filepath.Join(root, "escape"), "*.log", "resolves through a symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPaths(fileCfg(tc.logPath, tc.pattern), roots)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
	// Inputs without files (container stdout) are for the factory to judge.
	stdout, _ := json.Marshal(map[string]any{"configName": "s", "inputType": "plugin",
		"inputDetail": map[string]any{"plugin": map[string]any{"inputs": []any{map[string]any{"type": "service_docker_stdout"}}}}})
	require.NoError(t, CheckPaths(stdout, roots))
}

func TestAllowedRoots(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	got, err := AllowedRootsFromInstance(logconfig.NewDefaultInstance(), env(nil))
	require.NoError(t, err)
	require.Equal(t, DefaultAllowedRoots, got)
	require.NotContains(t, got, "/etc")
	require.NotContains(t, got, "/")

	path := filepath.Join(t.TempDir(), "ilogtail_config.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"allowed_log_roots": ["/srv/logs/", "/data"]}`), 0o600))
	in, err := logconfig.LoadInstance(path, env(nil))
	require.NoError(t, err)
	got, err = AllowedRootsFromInstance(in, env(nil))
	require.NoError(t, err)
	require.Equal(t, []string{"/srv/logs", "/data"}, got)

	got, err = AllowedRootsFromInstance(in, env(map[string]string{EnvAllowedRoots: "/a, /b"}))
	require.NoError(t, err)
	require.Equal(t, []string{"/a", "/b"}, got, "the environment wins over the file")

	_, err = AllowedRootsFromInstance(in, env(map[string]string{EnvAllowedRoots: "logs"}))
	require.ErrorContains(t, err, "not an absolute path")
	in.Extra["allowed_log_roots"] = json.RawMessage(`"/var/log"`)
	_, err = AllowedRootsFromInstance(in, env(nil))
	require.ErrorContains(t, err, "use a JSON array")
}

func TestDamagedCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user_config.json")
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	_, err := loadCache(path)
	require.ErrorContains(t, err, "it is set aside as "+path+".damaged; the configs are fetched again from the server")

	// The client starts anyway (with nothing cached) and keeps the file
	// for inspection.
	c, err := New(Config{Endpoint: "127.0.0.1:1", AccessKeyID: "k", AccessKeySecret: "s", CachePath: path}, Settings{}, nopApplier{})
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	require.FileExists(t, path+".damaged")
	require.NotEmpty(t, c.InstanceID())

	empty, err := loadCache(filepath.Join(t.TempDir(), "missing.json"))
	require.NoError(t, err)
	require.Empty(t, empty.Configs)

	want := &cacheFile{InstanceID: "i", Configs: []cachedConfig{{Name: "b", Version: 2, Detail: "{}"}, {Name: "a", Version: 1, Detail: `{"x":1}`}}}
	require.NoError(t, saveCache(path, want))
	got, err := loadCache(path)
	require.NoError(t, err)
	require.Equal(t, "a", got.Configs[0].Name, "sorted")
	require.Equal(t, `{"x":1}`, got.Configs[0].Detail)
}

// FuzzCheckPaths: whatever the config, an accepted logPath is one of the
// roots or below one once cleaned.
func FuzzCheckPaths(f *testing.F) {
	f.Add("/var/log/app", "*.log")
	f.Add("/var/log/../../etc", "shadow")
	f.Add("/var/log/*/x", "a?.log")
	f.Add("//var//log", "")
	f.Fuzz(func(t *testing.T, logPath, pattern string) {
		roots := []string{"/var/log", "/data"}
		if err := CheckPaths(fileCfg(logPath, pattern), roots); err != nil || logPath == "" {
			return
		}
		clean := filepath.Clean(logPath)
		if !under(clean, roots) {
			t.Fatalf("accepted %q (clean %q) outside %v", logPath, clean, roots)
		}
		if strings.Contains(pattern, "/") || strings.Contains(pattern, "..") {
			t.Fatalf("accepted file pattern %q", pattern)
		}
	})
}

func TestCheckEndpoint(t *testing.T) {
	cfg := func(ep string) []byte {
		b, _ := json.Marshal(map[string]any{"configName": "c", "inputType": "file",
			"outputDetail": map[string]any{"projectName": "p", "logstoreName": "l", "endpoint": ep}})
		return b
	}
	allowed := []string{"https://logs.example.com:8443", "10.0.0.9:8080"}
	require.NoError(t, CheckEndpoint(cfg(""), allowed), "no endpoint: the agent's own")
	require.NoError(t, CheckEndpoint(cfg("logs.example.com:8443"), allowed))
	require.NoError(t, CheckEndpoint(cfg("http://10.0.0.9:8080/"), allowed))
	require.ErrorContains(t, CheckEndpoint(cfg("evil.example.net"), allowed),
		`outputDetail.endpoint "evil.example.net" is refused: configs from the server may only send to the servers in the instance config`)
}

type nopApplier struct{}

func (nopApplier) ApplySource(context.Context, string, []supervisor.ConfigFile) {}
func (nopApplier) Status() supervisor.Status                                    { return supervisor.Status{} }
