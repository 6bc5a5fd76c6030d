// Package testenv says what the machine provides to the tests that need
// real parts (kube-apiserver and etcd, Chromium, PostgreSQL, privileges) and
// applies the project's one rule for a missing part: the test skips, saying
// what is missing and how to get it, except under SLUICE_REQUIRE_ALL=1
// (make test, CI), where it fails, so that CI cannot pass by skipping.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// RequireAllEnv is the variable that turns skips for missing parts into
// failures.
const RequireAllEnv = "SLUICE_REQUIRE_ALL"

// RequireAll reports whether a missing part fails tests
// (SLUICE_REQUIRE_ALL=1), for a TestMain that has no testing.TB yet.
func RequireAll() bool { return os.Getenv(RequireAllEnv) == "1" }

// SkipOrFail skips tb with the formatted message, or fails it under
// SLUICE_REQUIRE_ALL=1.
func SkipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if RequireAll() {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// Cache is the directory of heavy test parts the hack/ensure-*.sh scripts
// build: $SLUICE_CACHE, or .cache at the repository root.
func Cache() string {
	if c := os.Getenv("SLUICE_CACHE"); c != "" {
		return c
	}
	_, file, _, _ := runtime.Caller(0) // <repo>/internal/testenv/testenv.go
	return filepath.Join(filepath.Dir(file), "..", "..", ".cache")
}

// EnvtestAssets returns the absolute directory holding the kube-apiserver and
// etcd that hack/ensure-envtest.sh builds (envtest's BinaryAssetsDirectory),
// or an error saying they are missing and how to get them.
func EnvtestAssets() (string, error) {
	dir, err := filepath.Abs(filepath.Join(Cache(), "envtest"))
	if err != nil {
		return "", err
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Errorf("envtest binaries missing in %s (run hack/ensure-envtest.sh): %w", dir, err)
		}
	}
	return dir, nil
}
