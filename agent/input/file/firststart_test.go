package file

import (
	"path/filepath"
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
