package logtail

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/logconfig"
)

func noFiles(string) bool { return false }

// The guides' sidecar environment, as printed (001/004 with the region
// filled in): the instance file is not in the image.
func TestReadGuideSidecarEnv(t *testing.T) {
	env := []string{
		"ALIYUN_LOGTAIL_USER_ID=1234567890",
		"ALIYUN_LOGTAIL_USER_DEFINED_ID=nginx-log-sidecar",
		"ALIYUN_LOGTAIL_CONFIG=/etc/ilogtail/conf/cn-hangzhou-internet/ilogtail_config.json",
		"ALIYUN_LOG_ENV_TAGS=_pod_name_|_pod_ip_",
		"_pod_name_=web-1", "_pod_ip_=10.0.0.9",
		"access_key_id=AK", "access_key_secret=SK",
	}
	e, err := Read(env, noFiles)
	require.NoError(t, err)
	assert.Equal(t, "", e.InstancePath)
	assert.Equal(t, "cn-hangzhou-internet", e.Region)
	assert.Equal(t, DefaultEndpoint, e.Endpoint)

	// The instance config loads from the environment, with the endpoint.
	inst, err := logconfig.LoadInstance("", e.Getenv)
	require.NoError(t, err)
	assert.Equal(t, DefaultEndpoint, inst.ConfigServerAddress)
	assert.Equal(t, []string{"nginx-log-sidecar"}, inst.UserDefinedIDs)
	assert.Equal(t, []logconfig.Tag{{Key: "_pod_name_", Value: "web-1"}, {Key: "_pod_ip_", Value: "10.0.0.9"}}, inst.EnvTagValues)

	// What the agent says about it: the missing file and the account id.
	msgs := notices(e)
	assert.Contains(t, msgs, "ALIYUN_LOGTAIL_CONFIG: /etc/ilogtail/conf/cn-hangzhou-internet/ilogtail_config.json does not exist: settings come from the environment; server "+DefaultEndpoint)
	assert.Contains(t, msgs, "ALIYUN_LOGTAIL_USER_ID: account id 1234567890 is not used: Sluice authorizes agents by access key; set access_key_id and access_key_secret")
}

func notices(e *Environment) string {
	var b strings.Builder
	for _, n := range e.Notices {
		b.WriteString(n.Var + ": " + n.Msg + "\n")
	}
	return b.String()
}

func TestReadEndpointPrecedence(t *testing.T) {
	const cfg = "ALIYUN_LOGTAIL_CONFIG=/etc/ilogtail/conf/cn-beijing/ilogtail_config.json"
	f := func(env []string, want string) {
		t.Helper()
		e, err := Read(env, noFiles)
		require.NoError(t, err)
		inst, err := logconfig.LoadInstance("", e.Getenv)
		require.NoError(t, err)
		assert.Equal(t, want, inst.ConfigServerAddress, "%q", env)
	}
	// config_server_address (the ilogtail_config.json key) wins.
	f([]string{cfg, "config_server_address=http://mine:8080"}, "http://mine:8080")
	// The region table: exact region, then *.
	f([]string{cfg, "SLUICE_REGION_ENDPOINTS=cn-hangzhou=http://hz:1,cn-beijing=http://bj:2,*=http://any:3"}, "http://bj:2")
	f([]string{cfg, "SLUICE_REGION_ENDPOINTS=cn-hangzhou=http://hz:1,*=http://any:3"}, "http://any:3")
	f([]string{cfg}, DefaultEndpoint)
	// No ALIYUN_LOGTAIL_CONFIG at all: nothing is invented.
	f(nil, "")

	_, err := Read([]string{cfg, "SLUICE_REGION_ENDPOINTS=cn-beijing"}, noFiles)
	require.ErrorContains(t, err, "SLUICE_REGION_ENDPOINTS: entry \"cn-beijing\": write region=endpoint")
}

// An existing file is loaded as before; the environment still overrides
// its keys.
func TestReadExistingInstanceFile(t *testing.T) {
	path := t.TempDir() + "/ilogtail_config.json"
	require.NoError(t, writeFile(path, `{"config_server_address":"http://from-file:8080","check_point_filename":"/data/cp"}`))
	e, err := Read([]string{"ALIYUN_LOGTAIL_CONFIG=" + path}, func(p string) bool { return p == path })
	require.NoError(t, err)
	assert.Equal(t, path, e.InstancePath)
	assert.Empty(t, e.Endpoint)
	assert.Empty(t, e.Notices)
	inst, err := logconfig.LoadInstance("", e.Getenv)
	require.NoError(t, err)
	assert.Equal(t, "http://from-file:8080", inst.ConfigServerAddress)
	assert.Equal(t, "/data/cp", inst.CheckPointFilename)
}

// Guide 000: aliyun_logs_machinegroup is one more identity.
func TestReadMachineGroup(t *testing.T) {
	e, err := Read([]string{
		"ALIYUN_LOGTAIL_USER_DEFINED_ID=nginx-log-sidecar",
		"aliyun_logs_machinegroup=k8s-group-app-alpine",
	}, noFiles)
	require.NoError(t, err)
	inst, err := logconfig.LoadInstance("", e.Getenv)
	require.NoError(t, err)
	assert.Equal(t, []string{"nginx-log-sidecar", "k8s-group-app-alpine"}, inst.UserDefinedIDs)

	// Alone, it is the identity; given twice, it counts once.
	e, err = Read([]string{"aliyun_logs_machinegroup=g1", "ALIYUN_LOGTAIL_USER_DEFINED_ID=g1"}, noFiles)
	require.NoError(t, err)
	assert.Equal(t, "g1", e.Getenv("ALIYUN_LOGTAIL_USER_DEFINED_ID"))
	e, err = Read([]string{"aliyun_logs_machinegroup=g1"}, noFiles)
	require.NoError(t, err)
	assert.Equal(t, "g1", e.Getenv("ALIYUN_LOGTAIL_USER_DEFINED_ID"))
}

// No Logtail variable is ignored silently: each unused one gets a warning
// naming what to use instead.
func TestReadUnusedVariablesAreNamed(t *testing.T) {
	e, err := Read([]string{
		"aliyun_logs_catalina=stdout", "aliyun_logs_catalina_tags=app=tomcat",
		"ALIYUN_LOGTAIL_MAX_CONFIG_UPDATE=3", "docker_file_cache_path=/x", "PATH=/bin",
	}, noFiles)
	require.NoError(t, err)
	byVar := map[string]Notice{}
	for _, n := range e.Notices {
		byVar[n.Var] = n
	}
	require.Len(t, byVar, 4, notices(e))
	assert.Equal(t, slog.LevelWarn, byVar["aliyun_logs_catalina"].Level)
	assert.Contains(t, byVar["aliyun_logs_catalina"].Msg, "AliyunLogConfig")
	assert.Contains(t, byVar["aliyun_logs_catalina_tags"].Msg, "AliyunLogConfig")
	assert.Contains(t, byVar["ALIYUN_LOGTAIL_MAX_CONFIG_UPDATE"].Msg, "not used by sluice-agent")
	assert.Contains(t, byVar["docker_file_cache_path"].Msg, "Kubernetes API")
}

func TestRegion(t *testing.T) {
	for path, want := range map[string]string{
		"/etc/ilogtail/conf/cn-hangzhou/ilogtail_config.json":          "cn-hangzhou",
		"/etc/ilogtail/conf/cn-hangzhou-internet/ilogtail_config.json": "cn-hangzhou-internet",
		"/etc/ilogtail/ilogtail_config.json":                           "",
		"ilogtail_config.json":                                         "",
	} {
		assert.Equal(t, want, region(path), path)
	}
}

func TestInstallLinksAndAppInfo(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, InstallLinks(root, "/sluice-agent"))
	for _, a := range Applets {
		to, err := os.Readlink(filepath.Join(root, a.Path))
		require.NoError(t, err, a.Path)
		assert.Equal(t, "/sluice-agent", to)
		assert.True(t, IsApplet(a.Path))
	}
	assert.False(t, IsApplet("/sluice-agent"))

	// app_info.json is written through its link.
	dir := t.TempDir()
	link := filepath.Join(dir, "app_info.json")
	require.NoError(t, os.Symlink(filepath.Join(dir, "target.json"), link))
	info := NewAppInfo("v1.2.3", "web-0", "10.0.0.9", "id-1", []string{"g1"}, "http://s:8080", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	require.NoError(t, info.Write(link))
	b, err := os.ReadFile(link)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, "web-0", got["hostname"])
	assert.Equal(t, "10.0.0.9", got["ip"])
	assert.Equal(t, "v1.2.3", got["logtail_version"])
	assert.Equal(t, "2026-01-02 03:04:05", got["update_time"])
	assert.Contains(t, got["os"], "Linux; ")
}
