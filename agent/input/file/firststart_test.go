package file

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/pipeline"
)

// The config's first start is on disk before the first discovery pass, so
// an agent killed during that pass does not start "for the first time"
// again and skip the head of a file that grew meanwhile.
func TestFirstStartIsDurableBeforeTheFirstPass(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.log"), "one\n")
	cpPath := filepath.Join(t.TempDir(), "cp.json")
	store, err := checkpoint.New(checkpoint.Config{Path: cpPath, Interval: time.Hour}, checkpoint.Settings{})
	require.NoError(t, err)
	in, err := New(testConfig(dir), pipeline.ConsumerFunc(nil), Settings{Checkpoints: store})
	require.NoError(t, err)

	in.beginConfig() // what the scanner does first; the agent is "killed" right after
	require.True(t, in.firstStart)

	reloaded, err := checkpoint.New(checkpoint.Config{Path: cpPath, Interval: time.Hour}, checkpoint.Settings{})
	require.NoError(t, err)
	st, ok := reloaded.Config("cfg")
	require.True(t, ok, "the first start was not recorded before the first pass")
	require.False(t, st.Started.IsZero())

	in2, err := New(testConfig(dir), pipeline.ConsumerFunc(nil), Settings{Checkpoints: reloaded})
	require.NoError(t, err)
	in2.beginConfig()
	require.False(t, in2.firstStart, "a restart after the kill is not a first start: unknown files are read from 0")
}

// A file created after the agent started is new even when the first
// discovery pass is what finds it (a pass that comes late, on a loaded
// machine or in a large tree): it is read from 0, not from its last
// tail_size_kb. Its birth time tells it from a file that existed before.
func TestFileCreatedBeforeTheFirstPassReachesItIsReadWhole(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.TailSizeKB = 1
	data, want := numbered("created after start", 0, 200) // 10 KiB
	var once sync.Once
	h := start(t, cfg, nil, nil, nil, func(in *Input) {
		in.hooks.dirs = func(dst []string) []string {
			// Asked by every discovery pass, the first one included,
			// after the start began. The pause is more than the file
			// system's clock granularity.
			once.Do(func() {
				time.Sleep(20 * time.Millisecond)
				writeFile(t, filepath.Join(dir, "app.log"), data)
			})
			return append(dst, dir)
		}
	})
	waitAll(t, h, want)
}

// Files rotated (and compressed) after the agent's very first start began
// but before its first discovery pass looked are not old rotated files:
// they are read whole, like the file that replaced them.
func TestFilesRotatedBeforeTheFirstPassAreRead(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.FilePattern = "app.log"
	path := filepath.Join(dir, "app.log")
	first, want := numbered("first file", 0, 100)
	second, lines := numbered("second file", 0, 100)
	want = append(want, lines...)
	var once sync.Once
	h := start(t, cfg, nil, nil, nil, func(in *Input) {
		in.hooks.dirs = func(dst []string) []string {
			// The first pass's first step, after the start began: a
			// rotation storm got there before it.
			once.Do(func() {
				time.Sleep(20 * time.Millisecond)
				writeFile(t, path+".1", first)
				gzipFile(t, path+".1")
				writeFile(t, path, second)
			})
			return append(dst, dir)
		}
	})
	waitAll(t, h, want)
}

// A directory that appears after the start with rotated files in it (a
// pod's log directory, a volume mounted late, a rotation storm quicker
// than the first look): the compressed rotated file is as new as the live
// file beside it, and both are read whole.
func TestRotatedFilesInANewDirectoryAreRead(t *testing.T) {
	root := t.TempDir()
	logs := filepath.Join(root, "logs")
	require.NoError(t, os.Mkdir(logs, 0o755))
	cfg := testConfig(logs)
	cfg.FilePattern = "access.log"
	cfg.MaxDepth = 1
	h := start(t, cfg, nil, nil, nil)
	time.Sleep(100 * time.Millisecond) // the first pass is over
	// Made beside the watched tree and moved in at once: the agent lists
	// it with both files in it.
	web := filepath.Join(root, "web")
	first, want := numbered("rotated", 0, 100)
	writeFile(t, filepath.Join(web, "access.log.1"), first)
	gzipFile(t, filepath.Join(web, "access.log.1"))
	live, lines := numbered("live", 0, 100)
	writeFile(t, filepath.Join(web, "access.log"), live)
	want = append(want, lines...)
	require.NoError(t, os.Rename(web, filepath.Join(logs, "web")))
	waitAll(t, h, want)
}
