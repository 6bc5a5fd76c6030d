package logconfig

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadInstanceDefaults(t *testing.T) {
	in, err := LoadInstance("", envMap(nil))
	require.NoError(t, err)
	require.Equal(t, "/tmp/logtail_check_point", in.CheckPointFilename)
	require.Equal(t, 5, in.CheckPointDumpInterval)
	require.Equal(t, 512<<10, in.MaxReadBufferSize)
	require.Equal(t, 1024, in.DefaultTailLimitKB)
	require.Equal(t, 25, in.BufferFileNum)
	require.EqualValues(t, 20<<20, in.BufferFileSize)
	require.True(t, in.DiscardOldData)
	require.Empty(t, in.Endpoints())
	require.Empty(t, in.EnvTagValues)
}

func TestLoadInstanceFile(t *testing.T) {
	in, err := LoadInstance("testdata/ilogtail_config.json", envMap(nil))
	require.NoError(t, err)
	require.Equal(t, 2.0, in.CPUUsageLimit)
	require.Equal(t, 1024, in.MemUsageLimit)
	require.Equal(t, 50, in.BufferFileNum)
	require.Equal(t, "/data/checkpoint", in.CheckPointFilename)
	require.Equal(t, 512<<10, in.MaxReadBufferSize, "keys the file omits keep their defaults")
	require.Equal(t, "/etc/sluice/ca.pem", in.TLS.CAFile)
	require.Equal(t, []string{"cn-hangzhou-intranet.log.aliyuncs.com", "http://logtail.cn-hangzhou-intranet.log.aliyuncs.com"}, in.Endpoints())
	require.Contains(t, in.Extra, "streamlog_open", "unknown upstream keys are kept")

	// Found through ALIYUN_LOGTAIL_CONFIG when no path is given.
	in2, err := LoadInstance("", envMap(map[string]string{EnvConfigPath: "testdata/ilogtail_config.json"}))
	require.NoError(t, err)
	require.Equal(t, in, in2)
}

func TestLoadInstanceEnvOverrides(t *testing.T) {
	in, err := LoadInstance("testdata/ilogtail_config.json", envMap(map[string]string{
		EnvUserDefinedID:            "sidecar-nginx, k8s-group-a ,",
		EnvUserID:                   "123456",
		EnvTags:                     "_pod_name_|_pod_ip_|_namespace_|_node_name_|_missing_",
		"_pod_name_":                "web-0",
		"_pod_ip_":                  "10.0.0.7",
		"_namespace_":               "prod",
		"_node_name_":               "node-1",
		"check_point_filename":      "/pvc/checkpoint",
		"check_point_dump_interval": "2",
		"buffer_file_path":          "/pvc/buffer",
		"user_config_file_path":     "/pvc/configs.json",
		"docker_file_cache_path":    "/pvc/docker.json",
		"cpu_usage_limit":           "0.5",
		"discard_old_data":          "false",
		"max_read_buffer_size":      "8388608",
	}))
	require.NoError(t, err)
	require.Equal(t, []string{"sidecar-nginx", "k8s-group-a"}, in.UserDefinedIDs)
	require.Equal(t, "123456", in.UserID)
	require.Equal(t, []Tag{
		{"_pod_name_", "web-0"}, {"_pod_ip_", "10.0.0.7"}, {"_namespace_", "prod"},
		{"_node_name_", "node-1"}, {"_missing_", ""},
	}, in.EnvTagValues)
	require.Equal(t, "/pvc/checkpoint", in.CheckPointFilename, "env beats the file")
	require.Equal(t, 2, in.CheckPointDumpInterval)
	require.Equal(t, "/pvc/buffer", in.BufferFilePath)
	require.Equal(t, "/pvc/configs.json", in.UserConfigFilePath)
	require.Equal(t, "/pvc/docker.json", in.DockerFileCachePath)
	require.Equal(t, 0.5, in.CPUUsageLimit)
	require.False(t, in.DiscardOldData)
	require.Equal(t, 8<<20, in.MaxReadBufferSize)
}

func TestLoadInstanceErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"max_read_buffer_size": 16777216, "buffer_file_num": 0,
		"config_server_address": "ftp://x", "access_key_id": "a", "tls": {"cert_file": "/c.pem"},
		"buffer_file_path": "buffer"}`), 0o600))
	_, err := LoadInstance(bad, envMap(map[string]string{
		"cpu_usage_limit":           "lots",
		EnvUserDefinedID:            "a b",
		"check_point_dump_interval": "0",
	}))
	require.Error(t, err)
	var got []string
	for _, ve := range ValidationErrors(err) {
		got = append(got, ve.Error())
	}
	q := `config "` + bad + `": `
	require.Equal(t, []string{
		q + `cpu_usage_limit: environment variable cpu_usage_limit="lots" is not a number: set it to a number such as 0.4`,
		q + `config_server_address: "ftp://x" has scheme "ftp": use http:// or https://`,
		q + `access_key_secret: access_key_id and access_key_secret must be set together: set both or neither`,
		q + `tls.key_file: tls.cert_file and tls.key_file must be set together: set both for client certificates, or neither`,
		q + `buffer_file_path: "buffer" is a relative path: use an absolute path`,
		q + `check_point_dump_interval: 0 is not positive: use seconds between checkpoint writes, e.g. 5`,
		q + `buffer_file_num: 0 is not positive: use the number of buffer files to keep, e.g. 25`,
		q + `max_read_buffer_size: 16777216 is out of range: use 1024 to 8388608 bytes (8 MiB)`,
		q + `user_defined_id[0]: "a b" contains whitespace: machine-group identities are single words`,
	}, got)

	_, err = LoadInstance(filepath.Join(dir, "missing.json"), nil)
	require.ErrorIs(t, err, os.ErrNotExist)

	typeErr := filepath.Join(dir, "type.json")
	require.NoError(t, os.WriteFile(typeErr, []byte(`{"buffer_file_num": "many"}`), 0o600))
	_, err = LoadInstance(typeErr, nil)
	require.EqualError(t, err, `config "`+typeErr+`": buffer_file_num: expected an integer, got JSON string: write the value as an integer`)
}

func TestInstanceLogValueRedactsSecret(t *testing.T) {
	in, err := LoadInstance("testdata/ilogtail_config.json", nil)
	require.NoError(t, err)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", "instance", in)
	require.NotContains(t, buf.String(), "s3cret")
	require.Contains(t, buf.String(), "REDACTED")
	require.Contains(t, buf.String(), "AKID")
}
