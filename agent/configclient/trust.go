package configclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluicelog/sluice/logconfig"
)

// DefaultAllowedRoots are the directories configs from the server may
// collect under when the instance config names none: the usual log
// locations on a host and in a container, and the same under /logtail_host
// (the host root a DaemonSet mounts). /etc, /root, /proc, /var/lib (other
// than container logs) and the rest of the file system are refused, so a
// hostile or mistaken config cannot ship /etc/shadow or a key file.
var DefaultAllowedRoots = []string{
	"/var/log", "/var/lib/docker/containers", "/home", "/opt", "/data", "/logs", "/srv", "/stdlog",
	"/logtail_host/var/log", "/logtail_host/var/lib/docker/containers", "/logtail_host/home",
	"/logtail_host/opt", "/logtail_host/data", "/logtail_host/logs", "/logtail_host/srv",
}

// Instance config key and environment variable that replace the default
// roots.
const (
	InstanceKeyAllowedRoots = "allowed_log_roots"        // JSON array of absolute paths
	EnvAllowedRoots         = "SLUICE_ALLOWED_LOG_ROOTS" // comma-separated
)

// AllowedRootsFromInstance returns the roots configured by
// $SLUICE_ALLOWED_LOG_ROOTS, else the instance config key
// allowed_log_roots, else DefaultAllowedRoots. Every root must be absolute.
func AllowedRootsFromInstance(in *logconfig.Instance, env func(string) string) ([]string, error) {
	var roots []string
	if env != nil {
		if v := env(EnvAllowedRoots); v != "" {
			for _, r := range strings.Split(v, ",") {
				if r = strings.TrimSpace(r); r != "" {
					roots = append(roots, r)
				}
			}
		}
	}
	if roots == nil && in != nil {
		if raw, ok := in.Extra[InstanceKeyAllowedRoots]; ok {
			if err := json.Unmarshal(raw, &roots); err != nil {
				return nil, fmt.Errorf("instance config %s: %v: use a JSON array of absolute directories, e.g. [\"/var/log\",\"/data/logs\"]", InstanceKeyAllowedRoots, err)
			}
		}
	}
	if roots == nil {
		return append([]string(nil), DefaultAllowedRoots...), nil
	}
	for i, r := range roots {
		if !filepath.IsAbs(r) {
			return nil, fmt.Errorf("allowed log root %q is not an absolute path: list directories such as /var/log", r)
		}
		roots[i] = filepath.Clean(r)
	}
	return roots, nil
}

// CheckPaths refuses a collection config whose files lie outside roots:
// logPath (cleaned, and with symlinks resolved when it exists) must be one
// of the roots or below one, and filePattern must be a file name pattern,
// not a path. Configs without a logPath (container stdout) pass; the
// pipeline factory judges what it can build.
func CheckPaths(data []byte, roots []string) error {
	cfg, err := logconfig.Parse(data)
	if err != nil {
		return nil // the factory reports the parse error with key paths
	}
	d := cfg.InputDetail
	if cfg.InputType != logconfig.InputTypeFile || (d.LogPath == "" && d.FilePattern == "") {
		return nil
	}
	if strings.ContainsAny(d.FilePattern, `/\`) || strings.Contains(d.FilePattern, "..") {
		return fmt.Errorf("inputDetail.filePattern %q is refused: it must be a file name pattern such as *.log, without directories", d.FilePattern)
	}
	if !filepath.IsAbs(d.LogPath) {
		return fmt.Errorf("inputDetail.logPath %q is refused: use an absolute directory under one of the allowed roots %s", d.LogPath, strings.Join(roots, ", "))
	}
	clean := filepath.Clean(d.LogPath)
	if !under(clean, roots) {
		return fmt.Errorf("inputDetail.logPath %q is outside the directories this agent collects from (%s): configs from the server may only read logs there; to allow it, add the directory to %s in the instance config or %s",
			d.LogPath, strings.Join(roots, ", "), InstanceKeyAllowedRoots, EnvAllowedRoots)
	}
	// A symlink inside a root must not lead outside all of them. The
	// wildcard-free prefix is what can be resolved.
	prefix := clean
	if i := strings.IndexAny(prefix, "*?["); i >= 0 {
		prefix = filepath.Dir(prefix[:i])
	}
	if resolved, err := filepath.EvalSymlinks(prefix); err == nil && !under(resolved, roots) {
		return fmt.Errorf("inputDetail.logPath %q is refused: it resolves through a symbolic link to %s, outside the allowed roots (%s)", d.LogPath, resolved, strings.Join(roots, ", "))
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("inputDetail.logPath %q: cannot check where it leads: %v", d.LogPath, err)
	}
	return nil
}

func under(path string, roots []string) bool {
	for _, r := range roots {
		if path == r || strings.HasPrefix(path, strings.TrimSuffix(r, "/")+"/") {
			return true
		}
	}
	return false
}

// CheckEndpoint refuses a collection config that would send its logs
// somewhere else than the servers this agent was configured with: a config
// from the server may name outputDetail.endpoint only when it is one of
// allowed (compared without scheme and trailing slash).
func CheckEndpoint(data []byte, allowed []string) error {
	cfg, err := logconfig.Parse(data)
	if err != nil || cfg.OutputDetail.Endpoint == "" {
		return nil
	}
	ep := endpointKey(cfg.OutputDetail.Endpoint)
	for _, a := range allowed {
		if endpointKey(a) == ep {
			return nil
		}
	}
	return fmt.Errorf("outputDetail.endpoint %q is refused: configs from the server may only send to the servers in the instance config (%s); remove the endpoint to use them, or add it to data_server_list",
		cfg.OutputDetail.Endpoint, strings.Join(allowed, ", "))
}

func endpointKey(ep string) string {
	ep = strings.ToLower(strings.TrimSpace(ep))
	if _, rest, ok := strings.Cut(ep, "://"); ok {
		ep = rest
	}
	return strings.TrimSuffix(ep, "/")
}
