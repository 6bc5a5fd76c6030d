package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/e2e/e2etest"
	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/mocklog"
)

// TestDeviceChangeWithoutReread simulates what happens to a shared-PVC
// agent whose pod is rescheduled: the same volume (same inodes, same
// content) comes back with another device id, and the checkpoint, kept on
// the volume, still names the old one.
//
// The simulation is honest about what changes: the agent always reads the
// same path; in the first run that path is a bind mount of the log
// directory (device = the disk's), in the second an overlayfs mount whose
// only lower layer is the same directory (overlayfs reports its own
// device id and, with all layers on one file system, the real inode
// numbers). Inodes and bytes are untouched; only st_dev differs — exactly
// the NFS/PV case. Each agent runs in its own mount namespace (unshare -m),
// so nothing is mounted on the host. Needs CAP_SYS_ADMIN; skipped without it
// unless SLUICE_REQUIRE_ALL=1.
//
// Both with --ignore-device and without it (the guides' manifests as
// printed) the second run resumes exactly where the first stopped: the file
// is at its checkpointed path with the same inode and first bytes. Before
// that was matched without the flag, the run without it read the file
// again (thousands of duplicates), which is what this test detects; the
// device change itself is asserted, so the simulation cannot silently stop
// changing it.
func TestDeviceChangeWithoutReread(t *testing.T) {
	requireMountNamespace(t)
	for _, ignore := range []bool{true, false} {
		t.Run(fmt.Sprint("ignore-device=", ignore), func(t *testing.T) { deviceChange(t, ignore) })
	}
}

func requireMountNamespace(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"l", "u", "w", "m"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o755))
	}
	probe := exec.Command("unshare", "-m", "--propagation", "private", "mount", "-t", "overlay", "overlay",
		"-o", overlayOpts(filepath.Join(dir, "l"), filepath.Join(dir, "u"), filepath.Join(dir, "w")), filepath.Join(dir, "m"))
	if out, err := probe.CombinedOutput(); err != nil {
		testenv.SkipOrFail(t, "needs a private mount namespace with overlayfs (root / CAP_SYS_ADMIN): %v: %s", err, out)
	}
}

func overlayOpts(lower, upper, work string) string {
	return "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
}

// inNamespace returns the wrap that runs the agent with mount set up first.
func inNamespace(mount string) []string {
	return []string{"unshare", "-m", "--propagation", "private", "sh", "-c", mount + ` && exec "$0" "$@"`}
}

func checkpointDevs(t *testing.T, path string) []uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var cp struct {
		Files []struct {
			Dev   uint64 `json:"dev"`
			Inode uint64 `json:"inode"`
		} `json:"files"`
	}
	require.NoError(t, json.Unmarshal(b, &cp))
	var devs []uint64
	for _, f := range cp.Files {
		devs = append(devs, f.Dev)
	}
	return devs
}

func deviceChange(t *testing.T, ignore bool) {
	root := t.TempDir()
	confDir, data, view := filepath.Join(root, "conf"), filepath.Join(root, "data"), filepath.Join(root, "view")
	upper, work := filepath.Join(root, "upper"), filepath.Join(root, "work")
	for _, d := range []string{confDir, data, view, upper, work} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	out := filepath.Join(root, "out.jsonl")
	cp := filepath.Join(root, "cp.json")
	writeConfig(t, confDir, "app.json", fileConfig("app", view, "*.log", nil))
	var args []string
	if ignore {
		args = []string{"--ignore-device"}
	}
	gen := e2etest.StartGenerator(t, mocklog.Options{Path: filepath.Join(data, "app.log"), LogsPerSec: 2000})

	// Node 1: the volume through a bind mount.
	a := startAgent(t, agentOpts{configDir: confDir, output: out, checkpoint: cp, args: args,
		wrap: inNamespace(fmt.Sprintf("mount --bind %s %s", data, view))})
	require.Eventually(t, func() bool { return e2etest.TrackOutput(t, out).Count() > 2000 }, 15*time.Second, 50*time.Millisecond, agentLog(root))
	a.Signal(syscall.SIGTERM)
	ok := a.Exited(15 * time.Second)
	require.True(t, ok)
	require.NoError(t, a.Err(), agentLog(root))
	devBefore := checkpointDevs(t, cp)
	require.Len(t, devBefore, 1)

	// Node 2: the same directory, another device id.
	b := startAgent(t, agentOpts{configDir: confDir, output: out, checkpoint: cp, args: args,
		wrap: inNamespace("mount -t overlay overlay -o " + overlayOpts(data, upper, work) + " " + view)})
	time.Sleep(time.Second)
	last := gen.Stop()
	tr := e2etest.TrackOutput(t, out)
	for deadline := time.Now().Add(15 * time.Second); tr.CountIn(1, last) < last && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		tr = e2etest.TrackOutput(t, out)
	}
	b.Signal(syscall.SIGTERM)
	ok = b.Exited(15 * time.Second)
	require.True(t, ok)
	devAfter := checkpointDevs(t, cp)
	require.NotEqual(t, devBefore, devAfter, "the simulation did not change the device id")

	tr = e2etest.TrackOutput(t, out)
	require.Empty(t, tr.Missing(1, last), tr.Summary(1, last))
	t.Logf("ignore-device=%v: device %v → %v: %s", ignore, devBefore, devAfter, tr.Summary(1, last))
	require.Zero(t, tr.Duplicates(), "the file was read again after the device changed")
}
