package file

import (
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/checkpoint"
)

func fileIDOf(t *testing.T, fi fs.FileInfo) checkpoint.FileID {
	t.Helper()
	st, ok := fi.Sys().(*syscall.Stat_t)
	require.True(t, ok)
	return checkpoint.FileID{Dev: st.Dev, Inode: st.Ino}
}

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }

func contains(list []string, s string) bool { return slices.Contains(list, s) }

func mustMetrics(t *testing.T) *metrics {
	m, err := newMetrics(nil, "cfg")
	require.NoError(t, err)
	return m
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type atomicInt struct{ v atomic.Int64 }

func (a *atomicInt) add(n int) { a.v.Add(int64(n)) }
func (a *atomicInt) load() int { return int(a.v.Load()) }
