package app

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/buffer"
	"github.com/sluicelog/sluice/agent/supervisor"
	"github.com/sluicelog/sluice/internal/tmpfstest"
)

// TestStatusShowsUnwritableBuffer: a disk buffer on a full disk is shown by
// status (JSON state and the text an operator reads) from the buffer's own
// metrics, and shown as writable again once it is.
func TestStatusShowsUnwritableBuffer(t *testing.T) {
	disk := tmpfstest.Mount(t, 4*tmpfstest.PageSize)
	reg := prometheus.NewRegistry()
	dir := filepath.Join(disk, "proj", "store")
	b, err := buffer.Open(buffer.Config{Dir: dir}, buffer.Settings{Registerer: reg})
	require.NoError(t, err)
	defer b.Close()
	a, err := supervisor.New(supervisor.Options{ConfigDir: t.TempDir(), Factory: failingFactory, Registerer: reg, Gatherer: reg})
	require.NoError(t, err)
	a.Sync(context.Background())

	st := a.Status()
	require.Len(t, st.Collection.Buffers, 1)
	require.Equal(t, supervisor.BufferOK, st.Collection.Buffers[0].State)

	rec := make([]byte, tmpfstest.PageSize)
	for err == nil {
		err = b.Append(context.Background(), rec)
	}
	require.True(t, errors.Is(err, buffer.ErrUnwritable), "%v", err)
	st = a.Status()
	require.True(t, st.Healthy, "a full disk is no reason to restart the agent")
	bs := st.Collection.Buffers[0]
	require.Equal(t, dir, bs.Dir)
	require.Equal(t, supervisor.BufferUnwritable, bs.State)
	require.NotNil(t, bs.WriteFailingSince)
	require.WithinDuration(t, time.Now(), *bs.WriteFailingSince, time.Minute)
	require.Positive(t, bs.NoSpaceErrors)
	require.Positive(t, bs.PendingBytes)
	var out strings.Builder
	WriteStatusText(&out, st)
	require.Contains(t, out.String(), "disk buffer "+dir+": CANNOT BE WRITTEN since ")
	require.Contains(t, out.String(), "no space left on the device")

	// Delivered: the disk has room again.
	for !b.Empty() {
		r, err := b.Next(context.Background())
		require.NoError(t, err)
		require.NoError(t, b.Commit(r))
	}
	require.NoError(t, b.Append(context.Background(), []byte("x")))
	st = a.Status()
	require.Equal(t, supervisor.BufferOK, st.Collection.Buffers[0].State)
	out.Reset()
	WriteStatusText(&out, st)
	require.NotContains(t, out.String(), "CANNOT")
}

// TestStatusShowsFullBuffer: a buffer whose buffer_file_num files are used
// makes appends wait; status says so while they wait.
func TestStatusShowsFullBuffer(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, err := buffer.Open(buffer.Config{Dir: t.TempDir(), MaxFiles: 1, MaxFileSize: 100}, buffer.Settings{Registerer: reg})
	require.NoError(t, err)
	defer b.Close()
	a, err := supervisor.New(supervisor.Options{ConfigDir: t.TempDir(), Factory: failingFactory, Registerer: reg, Gatherer: reg})
	require.NoError(t, err)
	require.NoError(t, b.Append(context.Background(), make([]byte, 80)))
	done := make(chan error, 1)
	go func() { done <- b.Append(context.Background(), make([]byte, 80)) }()
	require.Eventually(t, func() bool {
		st := a.Status()
		return len(st.Collection.Buffers) == 1 && st.Collection.Buffers[0].State == supervisor.BufferFull
	}, 5*time.Second, 5*time.Millisecond)
	var out strings.Builder
	WriteStatusText(&out, a.Status())
	require.Contains(t, out.String(), "FULL (buffer_file_num files in use)")
	r, err := b.Next(context.Background())
	require.NoError(t, err)
	require.NoError(t, b.Commit(r))
	require.NoError(t, <-done)
	require.Equal(t, supervisor.BufferOK, a.Status().Collection.Buffers[0].State)
}
