package logconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
)

// Environment variables the agent honours (logtail-compat reference).
const (
	EnvUserID        = "ALIYUN_LOGTAIL_USER_ID"
	EnvUserDefinedID = "ALIYUN_LOGTAIL_USER_DEFINED_ID"
	EnvConfigPath    = "ALIYUN_LOGTAIL_CONFIG"
	EnvTags          = "ALIYUN_LOG_ENV_TAGS"
)

// Instance is the agent's own configuration: the ilogtail_config.json keys
// Logtail users already have, plus Sluice's server credentials and TLS.
//
// Precedence: defaults < the JSON file < environment variables. Any scalar
// key can be overridden by an environment variable of the same name
// (check_point_filename=/data/cp), as the upstream images allow.
type Instance struct {
	// Where configs come from and logs go. data_server_list mirrors
	// ilogtail_config.json; Sluice's server serves both roles, so a single
	// config_server_address is enough.
	ConfigServerAddress string       `json:"config_server_address,omitempty"`
	DataServerList      []DataServer `json:"data_server_list,omitempty"`

	// Identity.
	UserID         string   `json:"user_id,omitempty"`         // ALIYUN_LOGTAIL_USER_ID
	UserDefinedIDs []string `json:"user_defined_id,omitempty"` // ALIYUN_LOGTAIL_USER_DEFINED_ID, comma-separated
	// EnvTags are the names listed in ALIYUN_LOG_ENV_TAGS (a|b|c), in order;
	// EnvTagValues holds their values, read from the environment at load time.
	EnvTags      []string `json:"env_tags,omitempty"`
	EnvTagValues []Tag    `json:"-"`

	// Credentials for the Log Service API. Never logged (see LogValue).
	AccessKeyID     string `json:"access_key_id,omitempty"`
	AccessKeySecret string `json:"access_key_secret,omitempty"`
	TLS             TLS    `json:"tls,omitzero"`

	// Checkpoints and local state.
	CheckPointFilename     string `json:"check_point_filename"`
	CheckPointDumpInterval int    `json:"check_point_dump_interval"` // seconds
	UserConfigFilePath     string `json:"user_config_file_path"`
	DockerFileCachePath    string `json:"docker_file_cache_path"`

	// Disk buffer used while the server is unreachable.
	BufferFilePath string `json:"buffer_file_path"`
	BufferFileNum  int    `json:"buffer_file_num"`
	BufferFileSize int64  `json:"buffer_file_size"` // bytes per file

	// Reading.
	MaxReadBufferSize  int  `json:"max_read_buffer_size"`  // bytes; longest line
	DefaultTailLimitKB int  `json:"default_tail_limit_kb"` // new file without checkpoint
	DiscardOldData     bool `json:"discard_old_data"`

	// Limits.
	CPUUsageLimit          float64 `json:"cpu_usage_limit"` // cores
	MemUsageLimit          int     `json:"mem_usage_limit"` // MiB
	MaxBytesPerSec         int64   `json:"max_bytes_per_sec"`
	ProcessThreadCount     int     `json:"process_thread_count"`
	SendRequestConcurrency int     `json:"send_request_concurrency"`

	// Extra keeps ilogtail_config.json keys Sluice does not use.
	Extra map[string]json.RawMessage `json:"-"`
}

// DataServer is one data_server_list entry.
type DataServer struct {
	Cluster  string `json:"cluster,omitempty"`
	Endpoint string `json:"endpoint"`
}

// TLS configures the agent's connection to the server.
type TLS struct {
	CAFile             string `json:"ca_file,omitempty"`
	CertFile           string `json:"cert_file,omitempty"`
	KeyFile            string `json:"key_file,omitempty"`
	ServerName         string `json:"server_name,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
}

// Tag is one key/value added to every log group.
type Tag struct {
	Key, Value string
}

// Instance defaults. The checkpoint path is upstream's; the dump interval is
// far tighter than upstream's 900 s so a crash repeats seconds of logs, not
// a quarter of an hour.
const (
	DefaultCheckPointFilename     = "/tmp/logtail_check_point"
	DefaultCheckPointDumpInterval = 5
	DefaultUserConfigFilePath     = "/tmp/logtail_user_config.json"
	DefaultDockerFileCachePath    = "/tmp/logtail_docker_path_cache.json"
	DefaultBufferFilePath         = "/tmp/logtail_buffer"
	DefaultBufferFileNum          = 25
	DefaultBufferFileSize         = 20 << 20
	DefaultMaxReadBufferSize      = 512 << 10
	MaxMaxReadBufferSize          = 8 << 20
	DefaultTailLimitKB            = 1024
	DefaultCPUUsageLimit          = 0.4
	DefaultMemUsageLimit          = 384
	DefaultMaxBytesPerSec         = 20 << 20
	DefaultProcessThreadCount     = 1
	DefaultSendRequestConcurrency = 4
)

// NewDefaultInstance returns the instance config used when no file and no
// environment variable says otherwise.
func NewDefaultInstance() *Instance {
	return &Instance{
		CheckPointFilename:     DefaultCheckPointFilename,
		CheckPointDumpInterval: DefaultCheckPointDumpInterval,
		UserConfigFilePath:     DefaultUserConfigFilePath,
		DockerFileCachePath:    DefaultDockerFileCachePath,
		BufferFilePath:         DefaultBufferFilePath,
		BufferFileNum:          DefaultBufferFileNum,
		BufferFileSize:         DefaultBufferFileSize,
		MaxReadBufferSize:      DefaultMaxReadBufferSize,
		DefaultTailLimitKB:     DefaultTailLimitKB,
		DiscardOldData:         true,
		CPUUsageLimit:          DefaultCPUUsageLimit,
		MemUsageLimit:          DefaultMemUsageLimit,
		MaxBytesPerSec:         DefaultMaxBytesPerSec,
		ProcessThreadCount:     DefaultProcessThreadCount,
		SendRequestConcurrency: DefaultSendRequestConcurrency,
	}
}

type instanceFields Instance

func (in *Instance) UnmarshalJSON(data []byte) error {
	return unmarshalKeepingExtra(data, (*instanceFields)(in), &in.Extra)
}

func (in Instance) MarshalJSON() ([]byte, error) {
	return marshalWithExtra((*instanceFields)(&in), in.Extra)
}

// LogValue keeps the secret out of logs.
func (in Instance) LogValue() slog.Value {
	redacted := in
	if redacted.AccessKeySecret != "" {
		redacted.AccessKeySecret = "REDACTED"
	}
	b, err := json.Marshal(redacted)
	if err != nil {
		return slog.StringValue(err.Error())
	}
	return slog.StringValue(string(b))
}

// LoadInstance builds the instance config: defaults, then the JSON file at
// path (or at $ALIYUN_LOGTAIL_CONFIG when path is empty; no file at all when
// both are empty), then environment variables read through env (os.Getenv in
// production; a map lookup in tests). The result is validated: every problem
// is a *ValidationError naming the key.
func LoadInstance(path string, env func(string) string) (*Instance, error) {
	if env == nil {
		env = func(string) string { return "" }
	}
	if path == "" {
		path = env(EnvConfigPath)
	}
	in := NewDefaultInstance()
	source := "instance"
	if path != "" {
		source = path
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read instance config: %w", err)
		}
		if len(bytes.TrimSpace(data)) > 0 {
			if err := json.Unmarshal(data, in); err != nil {
				return nil, decodeError(path, err)
			}
		}
	}
	p := &problems{config: source}
	in.applyEnv(env, p)
	in.validate(p)
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return in, nil
}

// applyEnv applies the documented variables, then same-named overrides of
// every scalar key.
func (in *Instance) applyEnv(env func(string) string, p *problems) {
	if v := env(EnvUserID); v != "" {
		in.UserID = v
	}
	if v := env(EnvUserDefinedID); v != "" {
		in.UserDefinedIDs = splitList(v, ",")
	}
	if v := env(EnvTags); v != "" {
		in.EnvTags = splitList(v, "|")
	}
	in.EnvTagValues = in.EnvTagValues[:0]
	for _, name := range in.EnvTags {
		in.EnvTagValues = append(in.EnvTagValues, Tag{Key: name, Value: env(name)})
	}

	rv := reflect.ValueOf(in).Elem()
	rt := rv.Type()
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		raw := env(name)
		if raw == "" {
			continue
		}
		fv := rv.Field(i)
		switch fv.Kind() {
		case reflect.String:
			fv.SetString(raw)
		case reflect.Int, reflect.Int64:
			n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
			if err != nil {
				p.add(name, "environment variable %s=%q is not an integer: set it to a whole number", name, raw)
				continue
			}
			fv.SetInt(n)
		case reflect.Float64:
			x, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
			if err != nil {
				p.add(name, "environment variable %s=%q is not a number: set it to a number such as 0.4", name, raw)
				continue
			}
			fv.SetFloat(x)
		case reflect.Bool:
			b, err := strconv.ParseBool(strings.TrimSpace(raw))
			if err != nil {
				p.add(name, "environment variable %s=%q is not a boolean: set it to true or false", name, raw)
				continue
			}
			fv.SetBool(b)
		}
	}
}

func splitList(s, sep string) []string {
	var out []string
	for _, part := range strings.Split(s, sep) {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func (in *Instance) validate(p *problems) {
	if in.ConfigServerAddress != "" {
		if msg := endpointProblem(in.ConfigServerAddress); msg != "" {
			p.add("config_server_address", "%s", msg)
		}
	}
	for i, ds := range in.DataServerList {
		at := fmt.Sprintf("data_server_list[%d].endpoint", i)
		if ds.Endpoint == "" {
			p.add(at, "is empty: set the server address, e.g. https://sluice.example.com")
		} else if msg := endpointProblem(ds.Endpoint); msg != "" {
			p.add(at, "%s", msg)
		}
	}
	if (in.AccessKeyID == "") != (in.AccessKeySecret == "") {
		p.add("access_key_secret", "access_key_id and access_key_secret must be set together: set both or neither")
	}
	if (in.TLS.CertFile == "") != (in.TLS.KeyFile == "") {
		p.add("tls.key_file", "tls.cert_file and tls.key_file must be set together: set both for client certificates, or neither")
	}
	for _, f := range []struct{ name, v string }{
		{"check_point_filename", in.CheckPointFilename},
		{"user_config_file_path", in.UserConfigFilePath},
		{"docker_file_cache_path", in.DockerFileCachePath},
		{"buffer_file_path", in.BufferFilePath},
	} {
		if f.v == "" {
			p.add(f.name, "is empty: set an absolute path")
		} else if !filepath.IsAbs(f.v) {
			p.add(f.name, "%q is a relative path: use an absolute path", f.v)
		}
	}
	if in.CheckPointDumpInterval <= 0 {
		p.add("check_point_dump_interval", "%d is not positive: use seconds between checkpoint writes, e.g. %d", in.CheckPointDumpInterval, DefaultCheckPointDumpInterval)
	}
	if in.BufferFileNum <= 0 {
		p.add("buffer_file_num", "%d is not positive: use the number of buffer files to keep, e.g. %d", in.BufferFileNum, DefaultBufferFileNum)
	}
	if in.BufferFileSize < 1<<20 {
		p.add("buffer_file_size", "%d bytes is too small: use at least 1048576 (1 MiB)", in.BufferFileSize)
	}
	if in.MaxReadBufferSize < 1<<10 || in.MaxReadBufferSize > MaxMaxReadBufferSize {
		p.add("max_read_buffer_size", "%d is out of range: use 1024 to %d bytes (8 MiB)", in.MaxReadBufferSize, MaxMaxReadBufferSize)
	}
	if in.DefaultTailLimitKB < 0 {
		p.add("default_tail_limit_kb", "%d is negative: use a size in KiB, e.g. %d", in.DefaultTailLimitKB, DefaultTailLimitKB)
	}
	if in.CPUUsageLimit <= 0 {
		p.add("cpu_usage_limit", "%g is not positive: use the number of cores the agent may use, e.g. 0.4", in.CPUUsageLimit)
	}
	if in.MemUsageLimit <= 0 {
		p.add("mem_usage_limit", "%d is not positive: use the memory limit in MiB, e.g. %d", in.MemUsageLimit, DefaultMemUsageLimit)
	}
	if in.MaxBytesPerSec <= 0 {
		p.add("max_bytes_per_sec", "%d is not positive: use the send limit in bytes per second, e.g. %d", in.MaxBytesPerSec, DefaultMaxBytesPerSec)
	}
	if in.ProcessThreadCount <= 0 {
		p.add("process_thread_count", "%d is not positive: use 1 or more", in.ProcessThreadCount)
	}
	if in.SendRequestConcurrency <= 0 {
		p.add("send_request_concurrency", "%d is not positive: use 1 or more", in.SendRequestConcurrency)
	}
	for i, id := range in.UserDefinedIDs {
		if strings.ContainsAny(id, " \t\r\n") {
			p.add(fmt.Sprintf("user_defined_id[%d]", i), "%q contains whitespace: machine-group identities are single words", id)
		}
	}
}

// endpointProblem accepts host, host:port or an http(s) URL.
func endpointProblem(ep string) string {
	s := ep
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Sprintf("%q is not an address: write host, host:port or http(s)://host[:port]", ep)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Sprintf("%q has scheme %q: use http:// or https://", ep, u.Scheme)
	}
	return ""
}

// Endpoints lists the server addresses to send to, in order:
// data_server_list, then config_server_address.
func (in *Instance) Endpoints() []string {
	var out []string
	for _, ds := range in.DataServerList {
		out = append(out, ds.Endpoint)
	}
	if in.ConfigServerAddress != "" && !contains(out, in.ConfigServerAddress) {
		out = append(out, in.ConfigServerAddress)
	}
	return out
}
