//go:build !linux

package tmpfstest

import (
	"testing"

	"github.com/sluicelog/sluice/internal/testenv"
)

// Mount skips the test: tmpfs is Linux's.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	testenv.SkipOrFail(t, "needs Linux to mount a tmpfs to fill a disk")
	return ""
}
