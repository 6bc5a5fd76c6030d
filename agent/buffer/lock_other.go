//go:build !unix

package buffer

import "os"

// lockDir is a no-op where flock is unavailable.
func lockDir(string) (*os.File, error) { return nil, nil }

// isNoSpace reports whether err is a full disk; unknown here.
func isNoSpace(error) bool { return false }
