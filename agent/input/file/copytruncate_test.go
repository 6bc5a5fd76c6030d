package file

import (
	"fmt"
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

// With a filePattern that matches the copies (app.log*), each copy is a new
// file to discovery; it must not be read again from its start. Rotations as
// mocklog and logrotate make them: older copies shifted (app.log.1 →
// app.log.2), app.log copied to app.log.1 and truncated — at once, and
// with a pause between copy and truncation (the copy is judged while its
// source still holds the same content).
func TestCopyTruncateWithPatternMatchingCopiesReadsEachLineOnce(t *testing.T) {
	for _, pause := range []time.Duration{0, 700 * time.Millisecond} {
		t.Run(pause.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir)
			cfg.FilePattern = "app.log*"
			h := start(t, cfg, nil, nil, nil)
			path := filepath.Join(dir, "app.log")
			var want []string
			for r := range 6 {
				data, lines := numbered(fmt.Sprintf("rotation %d", r), 0, 40)
				appendFile(t, path, data)
				want = append(want, lines...)
				if r%2 == 0 {
					// Read before the rotation, or not. Lines of the
					// copy and of the live file may interleave.
					waitAll(t, h, want)
				}
				for i := r; i >= 1; i-- {
					require.NoError(t, os.Rename(fmt.Sprintf("%s.%d", path, i), fmt.Sprintf("%s.%d", path, i+1)))
				}
				data2, err := os.ReadFile(path)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(path+".1", data2, 0o644))
				time.Sleep(pause)
				require.NoError(t, os.Truncate(path, 0))
			}
			data, lines := numbered("last", 0, 5)
			appendFile(t, path, data)
			want = append(want, lines...)
			waitAll(t, h, want)
		})
	}
}

// A file truncated and refilled while its reader waits on back-pressure,
// right after an earlier truncation: the reader must know the new content
// by its first bytes from the moment it starts reading it again, or the
// bytes read after the wait (the next content, at an old offset) pass for
// the old content's tail — sent twice, and the old content's real tail,
// in the copy, skipped.
func TestCopyTruncateAgainWhileReadBlockedAfterTruncation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	h, holder := startHolding(t, testConfig(dir), false)

	first, want := numbered("first", 0, 600) // 30 KiB
	writeFile(t, path, first)
	waitAll(t, h, want)

	// copytruncate with less written since than was read: a truncation.
	holder.arm()
	second, lines := numbered("second", 0, 300) // 15 KiB: several reads
	require.NoError(t, os.WriteFile(path+".1", []byte(first), 0o644))
	rewrite(t, path, second)
	want = append(want, lines...)
	holder.waitHeld(t)
	time.Sleep(50 * time.Millisecond) // the reader waits for room in the window

	// Rotated again while the reader waits, with more written than it had
	// read of the second content.
	require.NoError(t, os.Rename(path+".1", path+".2"))
	require.NoError(t, os.WriteFile(path+".1", []byte(second), 0o644))
	third, lines := numbered("third", 0, 600)
	rewrite(t, path, third)
	want = append(want, lines...)
	holder.release()
	waitAll(t, h, want)
}

// rewrite truncates path and writes data into it through one descriptor,
// as an application logging to a file opened without O_APPEND does after
// copytruncate.
func rewrite(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	require.NoError(t, err)
	_, err = f.WriteString(data)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// Only a file named after another (app.log.1 after app.log), as rotations
// name copies, is judged a copy of it: a new file under another name that
// starts with the same bytes is a file of its own and is read whole.
func TestFileStartingLikeAnotherIsNotTakenForItsCopy(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.FilePattern = "*.log"
	h := start(t, cfg, nil, nil, nil)
	common, want := numbered("same header", 0, 40) // 2.3 KiB, more than a signature
	writeFile(t, filepath.Join(dir, "a.log"), common)
	waitAll(t, h, want)
	own, lines := numbered("b only", 0, 5)
	writeFile(t, filepath.Join(dir, "b.log"), common+own)
	want = append(append(want, want...), lines...)
	waitAll(t, h, want)
}

// A copy that is never followed by a truncation (logrotate's copy option,
// or someone's cp) is read after copyWait from where its source's lines
// were acknowledged: the lines only the copy holds arrive, none twice.
func TestCopyWithoutTruncationIsReadFromTheAcknowledgedOffset(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.FilePattern = "app.log*"
	h := start(t, cfg, nil, nil, nil)
	data, want := numbered("line", 0, 40)
	writeFile(t, filepath.Join(dir, "app.log"), data)
	waitAll(t, h, want)
	own, lines := numbered("copy only", 0, 5)
	writeFile(t, filepath.Join(dir, "app.log.1"), data+own)
	want = append(want, lines...)
	time.Sleep(copyWait)
	waitAll(t, h, want)
}

// A copy whose source was truncated while the source's reader waits for
// acknowledgements (a slow server) waits for that reader longer than
// copyWait: read early, from the last acknowledged offset, it repeated
// what the reader had handed on meanwhile.
func TestCopyWaitsForTheTruncatedFilesReader(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.FilePattern = "app.log*"
	path := filepath.Join(dir, "app.log")
	h, holder := startHolding(t, cfg, true)

	data, want := numbered("line", 0, 300) // 15 KiB: several reads
	writeFile(t, path, data)
	holder.waitHeld(t)
	copyTruncate(t, path)
	time.Sleep(copyWait + time.Second) // the reader still waits
	holder.release()
	waitAll(t, h, want)
}
