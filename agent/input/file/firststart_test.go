package file

import (
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
