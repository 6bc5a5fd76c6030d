package file

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/checkpoint"
)

// copyTruncate does what logrotate's copytruncate does: copy path to
// path.1, then truncate path.
func copyTruncate(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path+".1", data, 0o644))
	require.NoError(t, os.Truncate(path, 0))
}

func waitSet(t *testing.T, h *harness, want ...string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); len(h.sink.Contents()) < len(want) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // nothing more may arrive
	require.ElementsMatch(t, want, h.sink.Contents())
}

func TestCopyTruncateWhileRunningReadsUnreadLinesFromCopy(t *testing.T) {
	dir := t.TempDir()
	h := start(t, testConfig(dir), nil, nil, nil)
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "first line of the old content\nsecond\n")
	h.waitContents("first line of the old content", "second")
	// Written and rotated before the next poll: only the copy has it (if
	// the input happened to read it first, the copy has nothing new).
	appendFile(t, path, "third, written just before the rotation\n")
	copyTruncate(t, path)
	appendFile(t, path, "new\n")
	waitSet(t, h, "first line of the old content", "second", "third, written just before the rotation", "new")
}

func TestCopyTruncateWhileDownResumesInCopy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	old := "one, already delivered\ntwo\nthree\n"
	writeFile(t, path, old)
	st, err := os.Stat(path)
	require.NoError(t, err)
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	store.Put(checkpoint.Entry{Config: "cfg", Path: path, File: fileIDOf(t, st), Sig: checkpoint.Sign([]byte(old)),
		Offset: int64(len("one, already delivered\n")), Size: st.Size()})
	// Rotated while the agent was down, and the app wrote on.
	copyTruncate(t, path)
	appendFile(t, path, "new after rotation\n")
	h := start(t, testConfig(dir), store, nil, nil)
	waitSet(t, h, "two", "three", "new after rotation")
}
