//go:build !linux

package tmpfstest

import "testing"

// Mount skips the test: tmpfs is Linux's.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	skipOrFail(t, "needs Linux to mount a tmpfs to fill a disk")
	return ""
}
