package buffer_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/buffer"
	"github.com/sluicelog/sluice/internal/tmpfstest"
)

// The tests here fill a real file system: a tmpfs of a few pages (see
// tmpfstest). tmpfs counts whole 4 KiB pages, so records framed to exactly
// one page make the moment of the fill exact.

const page = tmpfstest.PageSize

// pageRecord is record i framed to exactly one page.
func pageRecord(i int) []byte {
	r := make([]byte, page-8)
	copy(r, fmt.Sprintf("record-%d", i))
	return r
}

// smallDisk is a tmpfs of the given pages.
func smallDisk(t *testing.T, pages int) string {
	return tmpfstest.Mount(t, int64(pages*page))
}

// fill appends page records from first until the disk refuses one; it
// returns how many were accepted.
func fill(t *testing.T, b *buffer.Buffer, first int) int {
	t.Helper()
	for i := first; ; i++ {
		err := b.Append(context.Background(), pageRecord(i))
		if err != nil {
			require.ErrorIs(t, err, buffer.ErrUnwritable)
			require.ErrorIs(t, err, syscall.ENOSPC)
			return i - first
		}
		require.Less(t, i-first, 1000, "the disk never filled")
	}
}

// deliverAll reads and commits records from first until the buffer is empty,
// checking each; it returns the next record number.
func deliverAll(t *testing.T, b *buffer.Buffer, first int) int {
	t.Helper()
	for ; !b.Empty(); first++ {
		r := next(t, b)
		require.Equal(t, pageRecord(first), r.Data)
		require.NoError(t, b.Commit(r))
	}
	return first
}

// TestFullDiskAtRollover: the disk fills exactly when the buffer starts a
// new segment (four one-page records per segment; 16 pages for them and one
// for the cursor). Once the server takes the records, the delivered
// segments must go — the last one too, though the segment after it never
// got a record — the buffer must be Empty, and appends work again without
// a restart. Repeated: every fill of the run lands on a roll-over.
func TestFullDiskAtRollover(t *testing.T) {
	dir := smallDisk(t, 17)
	reg := prometheus.NewRegistry()
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	b, err := buffer.Open(buffer.Config{Dir: dir, MaxFiles: 100, MaxFileSize: 4 * page}, buffer.Settings{Registerer: reg, Logger: log})
	require.NoError(t, err)
	defer b.Close()
	// One record delivered first, so the cursor has its page.
	require.NoError(t, b.Append(context.Background(), pageRecord(0)))
	nextRec := deliverAll(t, b, 0)

	for round := range 5 {
		n := fill(t, b, nextRec)
		require.Equal(t, 16-nextRec%4, n, "round %d: the disk holds four segments", round)
		segs := segments(t, dir)
		require.Len(t, segs, 5, "round %d: the fill came with a new segment", round)
		st, err := os.Stat(segs[4])
		require.NoError(t, err)
		require.Zero(t, st.Size(), "round %d: the refused record is not left in the new segment", round)
		require.Positive(t, metricValue(t, reg, "sluice_buffer_write_failing_since_seconds"), "metrics show the failing buffer")

		nextRec = deliverAll(t, b, nextRec)
		require.Equal(t, segs[4:], segments(t, dir), "round %d: every delivered segment is deleted", round)
		require.Zero(t, metricValue(t, reg, "sluice_buffer_corrupt_bytes_total"))
	}
	require.Positive(t, metricValue(t, reg, "sluice_buffer_write_errors_total"))
	require.NoError(t, b.Append(context.Background(), pageRecord(nextRec)))
	require.Zero(t, metricValue(t, reg, "sluice_buffer_write_failing_since_seconds"), "writable again")
	// Told once, not once per fill: five fills within a minute are one
	// problem.
	require.Equal(t, 1, strings.Count(logs.String(), "level=ERROR msg=\"disk buffer cannot be written"), logs.String())
	require.Equal(t, 1, strings.Count(logs.String(), "disk buffer writable again"), logs.String())
}

// TestFullDiskMidSegment: the fill lands inside a segment; delivering the
// first segment frees the room for the rest.
func TestFullDiskMidSegment(t *testing.T) {
	dir := smallDisk(t, 14)
	b := open(t, buffer.Config{Dir: dir, MaxFiles: 100, MaxFileSize: 4 * page}, nil)
	defer b.Close()
	n := fill(t, b, 0)
	require.Equal(t, 14, n)
	require.Len(t, segments(t, dir), 4)
	// Deliver one segment: four pages free again.
	for i := range 4 {
		r := next(t, b)
		require.Equal(t, pageRecord(i), r.Data)
		require.NoError(t, b.Commit(r))
	}
	require.Equal(t, 3, fill(t, b, n), "the freed segment's room, less a page for the cursor")
	deliverAll(t, b, 4)
	require.Len(t, segments(t, dir), 1)
}

// TestFullDiskPartialWrite: a record larger than the space left is
// partly written before ENOSPC; the part is cut, the segment ends on a
// whole record (also for a restart), and nothing acknowledged is lost.
func TestFullDiskPartialWrite(t *testing.T) {
	dir := smallDisk(t, 8)
	cfg := buffer.Config{Dir: dir, MaxFiles: 100, MaxFileSize: 1 << 20}
	b := open(t, cfg, nil)
	for i := range 6 {
		require.NoError(t, b.Append(context.Background(), pageRecord(i)))
	}
	big := make([]byte, 5*page)
	err := b.Append(context.Background(), big)
	require.ErrorIs(t, err, syscall.ENOSPC)
	segs := segments(t, dir)
	require.Len(t, segs, 1)
	st, err := os.Stat(segs[0])
	require.NoError(t, err)
	require.EqualValues(t, 6*page, st.Size(), "the partial record is cut")
	require.NoError(t, b.Append(context.Background(), pageRecord(6)), "a record that fits still goes in")
	require.NoError(t, b.Close())

	reg := prometheus.NewRegistry()
	b, err = buffer.Open(cfg, buffer.Settings{Registerer: reg})
	require.NoError(t, err)
	defer b.Close()
	require.Zero(t, metricValue(t, reg, "sluice_buffer_torn_bytes_total"))
	require.Equal(t, 7, deliverAll(t, b, 0), "every acknowledged record, nothing else")
}

// TestFullDiskDeliveredNewestSegment: everything was delivered, but the
// newest segment still fills the disk. Append starts a new segment so the
// delivered one is deleted, and the record goes in.
func TestFullDiskDeliveredNewestSegment(t *testing.T) {
	dir := smallDisk(t, 8)
	reg := prometheus.NewRegistry()
	b, err := buffer.Open(buffer.Config{Dir: dir, MaxFiles: 100, MaxFileSize: 1 << 20}, buffer.Settings{Registerer: reg})
	require.NoError(t, err)
	defer b.Close()
	n := fill(t, b, 0)
	require.Equal(t, 8, n)
	deliverAll(t, b, 0)
	require.NoError(t, b.Append(context.Background(), pageRecord(n)), "the delivered segment made room")
	require.Len(t, segments(t, dir), 1)
	require.Equal(t, pageRecord(n), next(t, b).Data)
}

// TestFullDiskFreedByOthers: the disk is full because of another file;
// appends fail (and say so) until it is removed, then succeed.
func TestFullDiskFreedByOthers(t *testing.T) {
	disk := smallDisk(t, 16)
	dir := filepath.Join(disk, "buffer")
	b := open(t, buffer.Config{Dir: dir, MaxFiles: 100, MaxFileSize: 4 * page}, nil)
	defer b.Close()
	require.NoError(t, b.Append(context.Background(), pageRecord(0)))
	ballast := filepath.Join(disk, "ballast")
	require.ErrorIs(t, os.WriteFile(ballast, make([]byte, 16*page), 0o644), syscall.ENOSPC)
	require.Zero(t, fill(t, b, 1))
	changed := b.Changed()
	require.NoError(t, os.Remove(ballast))
	select {
	case <-changed:
		t.Fatal("Changed fired though the buffer did not change")
	case <-time.After(10 * time.Millisecond):
	}
	require.NoError(t, b.Append(context.Background(), pageRecord(1)))
	deliverAll(t, b, 0)
}
