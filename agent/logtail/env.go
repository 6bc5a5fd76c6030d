package logtail

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sluicelog/sluice/logconfig"
)

// Environment variables of Logtail containers that are not instance keys.
const (
	EnvConfig        = logconfig.EnvConfigPath    // ALIYUN_LOGTAIL_CONFIG
	EnvUserID        = logconfig.EnvUserID        // ALIYUN_LOGTAIL_USER_ID
	EnvUserDefinedID = logconfig.EnvUserDefinedID // ALIYUN_LOGTAIL_USER_DEFINED_ID
	EnvTags          = logconfig.EnvTags          // ALIYUN_LOG_ENV_TAGS
	// EnvMachineGroup names the machine group of a serverless pod's
	// sidecar (guide 000). It is one more machine-group identity.
	EnvMachineGroup = "aliyun_logs_machinegroup"
	// EnvRegionEndpoints maps the <region> of ALIYUN_LOGTAIL_CONFIG's path
	// to a server: "cn-hangzhou=http://a:8080,*=http://b:8080".
	EnvRegionEndpoints = "SLUICE_REGION_ENDPOINTS"
)

// DefaultEndpoint is where every region leads when SLUICE_REGION_ENDPOINTS
// does not say otherwise: the server Service of the Helm chart installed as
// documented (release sluice in namespace sluice).
const DefaultEndpoint = "http://sluice-server.sluice.svc:8080"

// instanceKeyEndpoint is the ilogtail_config.json key (and environment
// variable) naming the server.
const instanceKeyEndpoint = "config_server_address"

// Notice is one thing the agent says at start about its environment: what
// it made of a Logtail variable, or why it does not use one.
type Notice struct {
	Level slog.Level
	// Var is the variable the notice is about.
	Var string
	Msg string
}

// Environment is a Logtail container's environment as sluice-agent reads
// it. Use Getenv in place of os.Getenv when loading the instance config
// (logconfig.LoadInstance): it answers with what the environment means.
type Environment struct {
	// InstancePath is the instance config file to load: the file
	// ALIYUN_LOGTAIL_CONFIG names when it exists, else "".
	InstancePath string
	// Region is the <region> directory of ALIYUN_LOGTAIL_CONFIG's path
	// (/etc/ilogtail/conf/<region>/ilogtail_config.json), if it has one.
	Region string
	// Endpoint is the server derived from the region when
	// ALIYUN_LOGTAIL_CONFIG names a file that does not exist and
	// config_server_address is not set ("" otherwise).
	Endpoint string
	// MachineGroups are identities added to ALIYUN_LOGTAIL_USER_DEFINED_ID
	// (aliyun_logs_machinegroup).
	MachineGroups []string
	// Notices are to be logged at start.
	Notices []Notice

	getenv func(string) string
}

// Read interprets environ (KEY=VALUE pairs, as os.Environ) with Logtail's
// meaning. exists reports whether a path names an existing file (paths are
// as the container sees them). The error names a variable that cannot be
// understood and how to fix it.
func Read(environ []string, exists func(path string) bool) (*Environment, error) {
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	e := &Environment{getenv: func(k string) string { return vars[k] }}
	get := e.getenv

	if p := get(EnvConfig); p != "" {
		e.Region = region(p)
		if exists(p) {
			e.InstancePath = p
		} else {
			ep := get(instanceKeyEndpoint)
			how := "from " + instanceKeyEndpoint
			if ep == "" {
				var err error
				if ep, how, err = regionEndpoint(get(EnvRegionEndpoints), e.Region); err != nil {
					return nil, err
				}
				e.Endpoint = ep
			}
			e.notice(slog.LevelInfo, EnvConfig, "%s does not exist: settings come from the environment; server %s (%s)", p, ep, how)
		}
	}

	if g := strings.TrimSpace(get(EnvMachineGroup)); g != "" {
		e.MachineGroups = append(e.MachineGroups, g)
		e.notice(slog.LevelInfo, EnvMachineGroup, "machine group %s: configs applied to it reach this agent (it is one more identity beside %s)", g, EnvUserDefinedID)
	}
	if id := get(EnvUserID); id != "" {
		e.notice(slog.LevelInfo, EnvUserID,
			"account id %s is not used: Sluice authorizes agents by access key; set access_key_id and access_key_secret (from a Secret) to a key allowed to write the project", id)
	}
	if get("docker_file_cache_path") != "" {
		e.notice(slog.LevelInfo, "docker_file_cache_path",
			"not used: container paths come from the Kubernetes API at start (NODE_NAME), no cache is kept")
	}

	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch {
		case k == EnvMachineGroup || k == EnvConfig || k == EnvUserID || k == EnvUserDefinedID:
		case strings.HasPrefix(k, "aliyun_logs_"):
			e.notice(slog.LevelWarn, k,
				"not used: aliyun_logs_<logstore> variables are Logtail's per-container collection settings, read by its DaemonSet from application containers; Sluice does not read them: describe the collection in an AliyunLogConfig resource (see docs/kubernetes.md)")
		case strings.HasPrefix(k, "ALIYUN_LOGTAIL_"):
			e.notice(slog.LevelWarn, k,
				"not used by sluice-agent: it reads %s, %s, %s, %s and the instance keys (check_point_filename, buffer_file_path …) as environment variables", EnvConfig, EnvUserDefinedID, EnvUserID, EnvTags)
		}
	}
	return e, nil
}

func (e *Environment) notice(level slog.Level, v, format string, args ...any) {
	e.Notices = append(e.Notices, Notice{Level: level, Var: v, Msg: fmt.Sprintf(format, args...)})
}

// Getenv answers as the environment means: ALIYUN_LOGTAIL_CONFIG only when
// its file exists, config_server_address from the region when the file does
// not, and ALIYUN_LOGTAIL_USER_DEFINED_ID with the machine groups added.
func (e *Environment) Getenv(name string) string {
	v := e.getenv(name)
	switch name {
	case EnvConfig:
		return e.InstancePath
	case instanceKeyEndpoint:
		if v == "" {
			return e.Endpoint
		}
	case EnvUserDefinedID:
		ids := splitIDs(v)
		for _, g := range e.MachineGroups {
			if !slices.Contains(ids, g) {
				ids = append(ids, g)
			}
		}
		return strings.Join(ids, ",")
	}
	return v
}

// Log writes the notices to log.
func (e *Environment) Log(log *slog.Logger) {
	for _, n := range e.Notices {
		log.Log(context.Background(), n.Level, n.Msg, "env", n.Var)
	}
}

func splitIDs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// region returns the <region> of /etc/ilogtail/conf/<region>/ilogtail_config.json.
func region(path string) string {
	dir := filepath.Dir(filepath.Clean(path))
	if filepath.Base(filepath.Dir(dir)) != "conf" {
		return ""
	}
	return filepath.Base(dir)
}

// regionEndpoint looks region up in table ("region=endpoint,…", "*" for any
// region), falling back to DefaultEndpoint. how says which rule applied.
func regionEndpoint(table, region string) (endpoint, how string, err error) {
	var fallback string
	for _, entry := range strings.Split(table, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		r, ep, ok := strings.Cut(entry, "=")
		r, ep = strings.TrimSpace(r), strings.TrimSpace(ep)
		if !ok || r == "" || ep == "" {
			return "", "", fmt.Errorf("%s: entry %q: write region=endpoint, e.g. cn-hangzhou=http://sluice-server.sluice.svc:8080 (* matches every region)", EnvRegionEndpoints, entry)
		}
		switch r {
		case region:
			return ep, fmt.Sprintf("region %s in %s", region, EnvRegionEndpoints), nil
		case "*":
			fallback = ep
		}
	}
	if fallback != "" {
		return fallback, fmt.Sprintf("region %s: * in %s", region, EnvRegionEndpoints), nil
	}
	where := "region " + region
	if region == "" {
		where = "no region in the path"
	}
	return DefaultEndpoint, fmt.Sprintf("%s: the default of every region; set %s or %s to change it", where, instanceKeyEndpoint, EnvRegionEndpoints), nil
}
