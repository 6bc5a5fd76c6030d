package logtail

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/sluicelog/sluice/internal/fsutil"
)

// AppInfoPath is where Logtail writes app_info.json; the guides read it
// with `kubectl exec POD -- cat /usr/local/ilogtail/app_info.json`. In the
// image it is a link to AppInfoTarget, in /tmp, which stays writable when
// the root file system is read-only.
const (
	AppInfoPath   = "/usr/local/ilogtail/app_info.json"
	AppInfoTarget = "/tmp/app_info.json"
)

// AppInfo is app_info.json: Logtail's keys, plus what Sluice adds.
type AppInfo struct {
	UUID           string `json:"UUID"`
	Hostname       string `json:"hostname"`
	InstanceID     string `json:"instance_id"`
	IP             string `json:"ip"`
	LogtailVersion string `json:"logtail_version"`
	OS             string `json:"os"`
	UpdateTime     string `json:"update_time"`
	// Agent and Version say which agent answers with Logtail's names.
	Agent          string   `json:"agent"`
	UserDefinedIDs []string `json:"user_defined_id,omitempty"`
	ConfigServer   string   `json:"config_server_address,omitempty"`
}

// NewAppInfo fills the fields every agent knows at start.
func NewAppInfo(version, hostname, ip, instanceID string, ids []string, server string, now time.Time) AppInfo {
	return AppInfo{
		Hostname: hostname, InstanceID: instanceID, IP: ip, LogtailVersion: version,
		OS:         osDescription(),
		UpdateTime: now.UTC().Format("2006-01-02 15:04:05"),
		Agent:      "sluice-agent", UserDefinedIDs: ids, ConfigServer: server,
	}
}

// Write writes info to path atomically (a temporary file renamed); when
// path is a symbolic link, to the file it names.
func (info AppInfo) Write(path string) error {
	if to, err := os.Readlink(path); err == nil {
		if !filepath.IsAbs(to) {
			to = filepath.Join(filepath.Dir(path), to)
		}
		path = to
	}
	data, err := json.MarshalIndent(info, "", "   ")
	if err != nil {
		return err
	}
	return fsutil.WriteFile(path, append(data, '\n'), 0o644)
}

// osDescription is Logtail's "Linux; <kernel release>; <arch>".
func osDescription() string {
	release := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		release = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s; %s; %s", strings.ToUpper(runtime.GOOS[:1])+runtime.GOOS[1:], release, runtime.GOARCH)
}
