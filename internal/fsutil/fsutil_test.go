package fsutil_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/fsutil"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	require.NoError(t, fsutil.WriteFile(path, []byte("one"), 0o600))
	require.NoError(t, os.WriteFile(path+".tmp", []byte("a crash's leftover"), 0o644))
	require.NoError(t, fsutil.WriteFile(path, []byte("two"), 0o640))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "two", string(got))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), st.Mode().Perm(), "perm applies to a replaced file too")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left")

	// A failed write leaves the old content and no temporary file.
	err = fsutil.WriteFile(filepath.Join(dir, "missing", "x"), []byte("x"), 0o600)
	require.ErrorContains(t, err, "missing")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	err = fsutil.WriteFile(filepath.Join(dir, "sub"), []byte("x"), 0o600) // a directory cannot be replaced
	require.Error(t, err)
	_, err = os.Stat(filepath.Join(dir, "sub.tmp"))
	require.True(t, os.IsNotExist(err), "temporary file removed: %v", err)

	require.ErrorContains(t, fsutil.SyncDir(filepath.Join(dir, "nope")), "sync dir")
}
