// Package tmpfstest gives tests a small real file system to fill: a tmpfs
// of a given size, mounted for the test and unmounted after it. A full
// tmpfs fails writes with ENOSPC (and part of a write lands first), as a
// full disk does, so the code under test meets the real failure rather than
// an injected one. Mounting needs root (CAP_SYS_ADMIN); without it the test
// is skipped, or failed when SLUICE_REQUIRE_ALL=1 (CI runs as root).
package tmpfstest

// PageSize is tmpfs' allocation unit: a file takes whole pages.
const PageSize = 4096
