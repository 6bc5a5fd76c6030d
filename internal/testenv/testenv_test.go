package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEnvtestAssets(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("SLUICE_CACHE", cache)
	_, err := EnvtestAssets()
	require.ErrorContains(t, err, "run hack/ensure-envtest.sh")
	dir := filepath.Join(cache, "envtest")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, b := range []string{"kube-apiserver", "etcd"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, b), nil, 0o755))
	}
	got, err := EnvtestAssets()
	require.NoError(t, err)
	require.Equal(t, dir, got)

	t.Setenv("SLUICE_CACHE", "")
	require.FileExists(t, filepath.Join(Cache(), "..", "go.mod"), "the default cache is at the repository root")
}

// fakeTB records what SkipOrFail does.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Skipf(string, ...any)  { f.skipped = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }

func TestSkipOrFail(t *testing.T) {
	t.Setenv(RequireAllEnv, "")
	tb := &fakeTB{}
	SkipOrFail(tb, "no %s", "chromium")
	require.True(t, tb.skipped && !tb.failed)
	t.Setenv(RequireAllEnv, "1")
	tb = &fakeTB{}
	SkipOrFail(tb, "no %s", "chromium")
	require.True(t, tb.failed, "SLUICE_REQUIRE_ALL=1 fails")
}
