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
	"os"
	"testing"

	"github.com/sluicelog/sluice/e2e/e2etest"
)

// agentBin is the sluice-agent binary built by TestMain.
var agentBin string

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, map[string]*string{"sluice-agent": &agentBin}))
}
