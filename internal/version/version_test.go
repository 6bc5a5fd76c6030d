package version_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/version"
)

func TestIsFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}, {"--version", "x"}} {
		require.True(t, version.IsFlag(args), "%q", args)
	}
	for _, args := range [][]string{nil, {}, {"run", "--version"}, {"--versions"}} {
		require.False(t, version.IsFlag(args), "%q", args)
	}
}

// TestStampedAtBuild builds a real binary with the version stamped the way
// `make build` does and runs its --version.
func TestStampedAtBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "mocklog")
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X github.com/sluicelog/sluice/internal/version.Version=v9.8.7-test",
		"github.com/sluicelog/sluice/cmd/mocklog")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())
	for _, arg := range []string{"--version", "version"} {
		out, err := exec.Command(bin, arg).Output()
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(out), "mocklog v9.8.7-test ("), "%q", out)
	}
}
