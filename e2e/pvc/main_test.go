// Package pvc tests the shared-PVC ("light") deployment mode with real
// processes, using the config of deploy/examples/shared-pvc: several app
// "pods" write into their own app/<ns>_<pod>_<podip>_<nodeip>_<node>
// directories of one shared directory, and ONE sluice-agent binary (built
// by TestMain) collects them all with its checkpoint on that shared
// directory, across clean restarts and a crash. It also runs the sidecar
// examples' file configs through the real agent on the lines their app
// containers write, so an example whose regex or timeFormat does not fit
// the logs fails here.
package pvc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// agentBin is the sluice-agent binary built by TestMain.
var agentBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sluice-pvc-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	agentBin = filepath.Join(dir, "sluice-agent")
	build := exec.Command("go", "build", "-o", agentBin, "github.com/sluicelog/sluice/cmd/sluice-agent")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sluice-agent:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}
