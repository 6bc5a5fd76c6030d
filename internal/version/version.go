// Package version says which build of Sluice is running, for every
// binary's --version and its startup log line. Release builds stamp
// Version at link time:
//
//	go build -ldflags "-X github.com/sluicelog/sluice/internal/version.Version=v0.2.0" ./cmd/...
//
// (`make build` and the image build do it from `git describe`); other
// builds fall back to the module version or the VCS revision Go records.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at link time; empty in builds that were not stamped.
var Version string

// Get returns the version: the stamped one, else the module version of
// `go install …@vX`, else the VCS revision (with "-dirty" for modified
// trees), else "dev".
func Get() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "dev-" + rev + dirty
}

// String is the --version line of binary: "sluice-agent v0.2.0 (go1.25.1 linux/amd64)".
func String(binary string) string {
	return fmt.Sprintf("%s %s (%s %s/%s)", binary, Get(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// IsFlag reports whether args ask for the version: --version, -version or
// the version command as the first argument.
func IsFlag(args []string) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "--version", "-version", "version":
		return true
	}
	return false
}
