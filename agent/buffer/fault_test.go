package buffer_test

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/buffer"
)

// fault fails calls at…at+n-1 (counted from 1) of one file operation.
type fault struct {
	op    string
	at, n int
	calls int
}

// faults is a fault plan: each operation asks every fault.
type faults []*fault

func (fs faults) hook(op string) error {
	for _, f := range fs {
		if f.op != op {
			continue
		}
		f.calls++
		if f.calls >= f.at && f.calls < f.at+f.n {
			return syscall.ENOSPC
		}
	}
	return nil
}

func (fs faults) String() string {
	s := ""
	for _, f := range fs {
		s += fmt.Sprintf("%s#%d×%d ", f.op, f.at, f.n)
	}
	return s
}

// fixed is a 40-byte record (48 framed: two per 100-byte segment).
func fixed(i int) []byte { return fmt.Appendf(nil, "%040d", i) }

// TestFaultAtEveryPoint fails each file operation of the buffer — the
// record's write (half of it lands, as on a full disk), its fsync, the
// cut of a failed write, a new segment's creation and directory fsync, the
// cursor save — at every point of a run of appends and deliveries, once or
// several times in a row. After every failure the buffer must stay usable
// (the append succeeds once the fault passes), the consumer must get
// exactly the records whose Append succeeded, in order, never a partial
// one, delivered segments must be deleted whatever the newest holds (the
// buffer is Empty and one file is left after each full delivery), and a
// restart must find no damage.
func TestFaultAtEveryPoint(t *testing.T) {
	// Calls of each operation in the clean run below, so every point is hit.
	calls := map[string]int{"write": 0, "sync": 0, "create": 0, "syncdir": 0, "cursor": 0}
	counter := faults{}
	for op := range calls {
		counter = append(counter, &fault{op: op, at: 1 << 30})
	}
	faultRun(t, counter)
	for _, f := range counter {
		calls[f.op] = f.calls
	}
	t.Logf("operations in a clean run: %v", calls)
	require.Positive(t, calls["create"], "the run rolls over")

	var plans []faults
	for op, n := range calls {
		for at := 1; at <= n; at++ {
			plans = append(plans, faults{{op: op, at: at, n: 1}})
			if op == "write" || op == "create" {
				plans = append(plans, faults{{op: op, at: at, n: 3}})
			}
		}
	}
	// A failed write whose cut fails too: no record may follow the
	// leftovers until the cut succeeds.
	for at := 1; at <= calls["write"]; at += 3 {
		plans = append(plans, faults{{op: "write", at: at, n: 1}, {op: "truncate", at: 1, n: 2}})
	}
	for _, p := range plans {
		t.Run(p.String(), func(t *testing.T) { faultRun(t, p) })
	}
}

// faultRun appends 13 records under plan, delivering after every third,
// and checks what TestFaultAtEveryPoint promises.
func faultRun(t *testing.T, plan faults) {
	dir := fastDir(t)
	cfg := buffer.Config{Dir: dir, MaxFiles: 100, MaxFileSize: 100}
	reg := prometheus.NewRegistry()
	b, err := buffer.Open(cfg, buffer.Settings{Registerer: reg})
	require.NoError(t, err)
	buffer.SetFault(b, plan.hook)
	var appended [][]byte
	delivered := 0
	deliver := func() {
		for !b.Empty() {
			r := next(t, b) // blocks (and fails) if nothing readable is left
			require.Less(t, delivered, len(appended), "a record that was never appended: %q", r.Data)
			require.Equal(t, string(appended[delivered]), string(r.Data), "record %d", delivered)
			require.NoError(t, b.Commit(r))
			delivered++
		}
		require.Equal(t, len(appended), delivered, "every appended record is delivered")
		require.True(t, b.Empty(), "everything delivered: Empty")
		require.Len(t, segments(t, dir), 1, "delivered segments are deleted, whatever the newest holds")
	}
	for i := range 13 {
		for attempt := 0; ; attempt++ {
			err := b.Append(context.Background(), fixed(i))
			if err == nil {
				appended = append(appended, fixed(i))
				break
			}
			require.ErrorIs(t, err, buffer.ErrUnwritable)
			require.ErrorIs(t, err, syscall.ENOSPC)
			require.Less(t, attempt, 8, "Append keeps failing after the fault passed: %v", err)
		}
		if i%3 == 2 {
			deliver()
		}
	}
	deliver()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	r, err := b.Next(ctx)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "read beyond the appended records: %q", r.Data)
	if plan[0].at < 1<<30 && plan[0].op != "cursor" {
		// A failed write of a delivered segment's successor may succeed
		// on the retry Append makes in a new segment; it is counted all
		// the same.
		require.Positive(t, metricValue(t, reg, "sluice_buffer_write_errors_total"), "the fault was hit and counted")
	}
	require.Zero(t, metricValue(t, reg, "sluice_buffer_write_failing_since_seconds"), "appends succeed again")
	require.Zero(t, metricValue(t, reg, "sluice_buffer_corrupt_bytes_total"))
	require.NoError(t, b.Close())

	// A restart finds whole records only and nothing undelivered (a cursor
	// that could not be saved may replay delivered records: duplicates,
	// never a loss).
	reg = prometheus.NewRegistry()
	b, err = buffer.Open(cfg, buffer.Settings{Registerer: reg})
	require.NoError(t, err)
	defer b.Close()
	require.Zero(t, metricValue(t, reg, "sluice_buffer_torn_bytes_total"), "no failed write left behind")
	for !b.Empty() {
		r := next(t, b)
		require.Contains(t, appended, r.Data)
		require.Equal(t, "cursor", plan[0].op, "records replayed though the cursor was saved")
		require.NoError(t, b.Commit(r))
	}
	require.NoError(t, b.Append(context.Background(), []byte("after restart")))
	require.Equal(t, "after restart", string(next(t, b).Data))
}

// fastDir is a temporary directory where fsync is cheap (/dev/shm when
// there is one): the fault tests run hundreds of short buffers and test
// the buffer's logic, not the disk.
func fastDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "sluice-buffer-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestFailedWriteOnNewSegment is the deadlock of issue 11 without a real
// disk: the buffer rolls over to a new segment and the disk fills just then,
// so the new segment stays empty. Delivering the first segment must delete
// it and leave the buffer Empty (the output then sends directly again)
// instead of waiting forever for a record of the empty segment.
func TestFailedWriteOnNewSegment(t *testing.T) {
	dir := t.TempDir()
	b := open(t, buffer.Config{Dir: dir, MaxFiles: 10, MaxFileSize: 100}, nil)
	defer b.Close()
	for i := range 2 {
		require.NoError(t, b.Append(context.Background(), fixed(i)))
	}
	full := true
	buffer.SetFault(b, func(op string) error {
		if op == "write" && full {
			return syscall.ENOSPC
		}
		return nil
	})
	err := b.Append(context.Background(), fixed(2))
	require.ErrorIs(t, err, syscall.ENOSPC)
	segs := segments(t, dir)
	require.Len(t, segs, 2, "rolled over before the write failed")
	st, err := os.Stat(segs[1])
	require.NoError(t, err)
	require.Zero(t, st.Size(), "the failed write is cut from the new segment")

	for i := range 2 {
		r := next(t, b)
		require.Equal(t, fixed(i), r.Data)
		require.NoError(t, b.Commit(r))
	}
	require.True(t, b.Empty())
	require.Equal(t, segs[1:], segments(t, dir), "the delivered segment is deleted")

	full = false
	require.NoError(t, b.Append(context.Background(), fixed(2)))
	require.Equal(t, fixed(2), next(t, b).Data)
}

// TestCutFailureBlocksAppends: when a failed write cannot even be cut, no
// record is written after its leftovers (it would be read as corruption,
// and everything after it skipped) until the cut succeeds.
func TestCutFailureBlocksAppends(t *testing.T) {
	dir := t.TempDir()
	b := open(t, buffer.Config{Dir: dir}, nil)
	defer b.Close()
	require.NoError(t, b.Append(context.Background(), fixed(0)))
	var eio = syscall.EIO
	cutFails := true
	buffer.SetFault(b, func(op string) error {
		switch {
		case op == "write":
			return eio
		case op == "truncate" && cutFails:
			return eio
		}
		return nil
	})
	require.ErrorIs(t, b.Append(context.Background(), fixed(1)), syscall.EIO)
	buffer.SetFault(b, func(op string) error {
		if op == "truncate" && cutFails {
			return eio
		}
		return nil
	})
	for range 3 {
		require.ErrorIs(t, b.Append(context.Background(), fixed(1)), buffer.ErrUnwritable, "appends wait for the cut")
	}
	cutFails = false
	require.NoError(t, b.Append(context.Background(), fixed(1)))
	for i := range 2 {
		r := next(t, b)
		require.Equal(t, fixed(i), r.Data)
		require.NoError(t, b.Commit(r))
	}
	require.True(t, b.Empty())
}
