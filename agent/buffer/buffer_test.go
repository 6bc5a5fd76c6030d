package buffer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/agent/buffer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func rec(i int) []byte { return fmt.Appendf(nil, "record-%04d-%s", i, make([]byte, i%50)) }

func open(t *testing.T, cfg buffer.Config, reg prometheus.Registerer) *buffer.Buffer {
	t.Helper()
	b, err := buffer.Open(cfg, buffer.Settings{Registerer: reg})
	require.NoError(t, err)
	return b
}

func next(t *testing.T, b *buffer.Buffer) buffer.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := b.Next(ctx)
	require.NoError(t, err)
	return r
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	sort.Strings(m)
	return m
}

func TestOrderAcrossSegmentsAndRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := buffer.Config{Dir: dir, MaxFiles: 100, MaxFileSize: 512}
	b := open(t, cfg, nil)
	for i := range 60 {
		require.NoError(t, b.Append(context.Background(), rec(i)))
	}
	require.Greater(t, len(segments(t, dir)), 3, "small segments roll over")
	for i := range 25 {
		r := next(t, b)
		require.Equal(t, rec(i), r.Data)
		require.NoError(t, b.Commit(r))
	}
	// Read but not committed: must come back after a restart.
	for i := 25; i < 30; i++ {
		require.Equal(t, rec(i), next(t, b).Data)
	}
	require.NoError(t, b.Close())
	require.NoError(t, b.Close(), "idempotent")

	b = open(t, cfg, nil)
	defer b.Close()
	require.False(t, b.Empty())
	for i := 25; i < 60; i++ {
		r := next(t, b)
		require.Equal(t, rec(i), r.Data, "record %d", i)
		require.NoError(t, b.Commit(r))
	}
	require.True(t, b.Empty())
	require.Zero(t, b.PendingBytes())
	require.LessOrEqual(t, len(segments(t, dir)), 2, "delivered segments are deleted")

	// Appending continues after the replay.
	require.NoError(t, b.Append(context.Background(), rec(60)))
	require.Equal(t, rec(60), next(t, b).Data)
}

func TestTornTailTruncated(t *testing.T) {
	dir := t.TempDir()
	cfg := buffer.Config{Dir: dir}
	b := open(t, cfg, nil)
	for i := range 3 {
		require.NoError(t, b.Append(context.Background(), rec(i)))
	}
	require.NoError(t, b.Close())

	// A crash mid-append: a header promising 100 bytes and 10 of them.
	segs := segments(t, dir)
	require.Len(t, segs, 1)
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(append([]byte{100, 0, 0, 0, 1, 2, 3, 4}, make([]byte, 10)...))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	before, _ := os.Stat(segs[0])

	reg := prometheus.NewRegistry()
	b = open(t, cfg, reg)
	defer b.Close()
	after, _ := os.Stat(segs[0])
	require.Equal(t, before.Size()-18, after.Size(), "cut back to the last good record")
	require.Equal(t, 18.0, metricValue(t, reg, "sluice_buffer_torn_bytes_total"), "cut bytes counted")
	require.Zero(t, metricValue(t, reg, "sluice_buffer_corrupt_bytes_total"), "an unfinished append was never acknowledged: not a loss")

	require.NoError(t, b.Append(context.Background(), rec(3)))
	for i := range 4 {
		r := next(t, b)
		require.Equal(t, rec(i), r.Data)
		require.NoError(t, b.Commit(r))
	}
}

// metricValue sums the counter or gauge called name in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return v
}

func TestFullBufferBlocksUntilDelivered(t *testing.T) {
	dir := t.TempDir()
	b := open(t, buffer.Config{Dir: dir, MaxFiles: 2, MaxFileSize: 100}, nil)
	defer b.Close()
	payload := make([]byte, 40) // 48 framed: two per segment
	for range 4 {
		require.NoError(t, b.Append(context.Background(), payload))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := b.Append(ctx, payload)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "full: Append waits instead of dropping or growing")
	require.Len(t, segments(t, dir), 2)

	done := make(chan error, 1)
	go func() { done <- b.Append(context.Background(), []byte("after")) }()
	select {
	case err := <-done:
		t.Fatalf("Append returned %v while the buffer is full", err)
	case <-time.After(50 * time.Millisecond):
	}
	// Delivering the first segment and one record of the second frees a file.
	for range 3 {
		r := next(t, b)
		require.NoError(t, b.Commit(r))
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Append still blocked after space was freed")
	}
	require.Equal(t, payload, next(t, b).Data)
	require.Equal(t, []byte("after"), next(t, b).Data)
}

// Buffers sharing a quota (one per logstore, buffer_file_num for the
// agent) together never hold more files than it allows beyond the one each
// appends to; a buffer waits for a file another one frees.
func TestSharedQuotaBoundsBuffersTogether(t *testing.T) {
	q := buffer.NewQuota(3)
	cfg := func(dir string) buffer.Config { return buffer.Config{Dir: dir, MaxFiles: 25, MaxFileSize: 100} }
	dirA, dirB := t.TempDir(), t.TempDir()
	a, err := buffer.Open(cfg(dirA), buffer.Settings{Quota: q})
	require.NoError(t, err)
	defer a.Close()
	b, err := buffer.Open(cfg(dirB), buffer.Settings{Quota: q})
	require.NoError(t, err)
	defer b.Close()
	require.Equal(t, 2, q.Used(), "each open buffer holds its newest segment")
	payload := make([]byte, 40) // 48 framed: two per segment
	for range 4 {
		require.NoError(t, a.Append(context.Background(), payload)) // A's second segment: the quota's third file
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err = a.Append(ctx, payload)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "A may not take a fourth file, though its own MaxFiles allows 25")
	for range 2 {
		require.NoError(t, b.Append(context.Background(), payload)) // fills B's only segment
	}
	done := make(chan error, 1)
	go func() { done <- b.Append(context.Background(), []byte("b-after")) }()
	select {
	case err := <-done:
		t.Fatalf("B's Append returned %v with the agent's quota used up", err)
	case <-time.After(50 * time.Millisecond):
	}
	require.Len(t, segments(t, dirA), 2)
	require.Len(t, segments(t, dirB), 1)
	// A delivers its first segment (and one record of the second): the
	// file it deletes is B's to take.
	for range 3 {
		require.NoError(t, a.Commit(next(t, a)))
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("B still blocked after A freed a file")
	}
	require.Equal(t, 3, q.Used())
	require.Len(t, segments(t, dirB), 2)
	require.NoError(t, a.Close())
	require.Equal(t, 2, q.Used(), "a closed buffer's files stop counting")
}

func TestCorruptOlderSegmentSkipped(t *testing.T) {
	dir := t.TempDir()
	cfg := buffer.Config{Dir: dir, MaxFileSize: 100}
	b := open(t, cfg, nil)
	for i := range 6 {
		require.NoError(t, b.Append(context.Background(), []byte(fmt.Sprintf("%040d", i))))
	}
	require.NoError(t, b.Close())
	segs := segments(t, dir)
	require.Len(t, segs, 3)
	data, err := os.ReadFile(segs[0])
	require.NoError(t, err)
	data[len(data)-1] ^= 0xff // second record of the first segment
	require.NoError(t, os.WriteFile(segs[0], data, 0o644))

	b = open(t, cfg, nil)
	defer b.Close()
	var got []string
	for range 5 {
		r := next(t, b)
		got = append(got, string(r.Data[len(r.Data)-1:]))
		require.NoError(t, b.Commit(r))
	}
	require.Equal(t, []string{"0", "2", "3", "4", "5"}, got)
}

func TestNextWaitsAndCloseWakes(t *testing.T) {
	b := open(t, buffer.Config{Dir: t.TempDir()}, nil)
	got := make(chan buffer.Record, 1)
	go func() {
		r, err := b.Next(context.Background())
		if err == nil {
			got <- r
		}
		close(got)
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, b.Append(context.Background(), []byte("x")))
	r, ok := <-got
	require.True(t, ok)
	require.Equal(t, "x", string(r.Data))

	errc := make(chan error, 1)
	go func() {
		_, err := b.Next(context.Background())
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, b.Close())
	require.True(t, errors.Is(<-errc, buffer.ErrClosed))
	require.ErrorIs(t, b.Append(context.Background(), []byte("y")), buffer.ErrClosed)
}

func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	b := open(t, buffer.Config{Dir: dir}, nil)
	_, err := buffer.Open(buffer.Config{Dir: dir}, buffer.Settings{})
	require.ErrorContains(t, err, "in use")
	require.NoError(t, b.Close())
	b = open(t, buffer.Config{Dir: dir}, nil) // released by Close
	require.NoError(t, b.Close())
}

func TestValidate(t *testing.T) {
	_, err := buffer.Open(buffer.Config{}, buffer.Settings{})
	require.ErrorContains(t, err, "buffer_file_path")
	_, err = buffer.Open(buffer.Config{Dir: t.TempDir(), MaxFiles: -1}, buffer.Settings{})
	require.ErrorContains(t, err, "buffer_file_num")
}

// FuzzOpen treats arbitrary bytes as a segment left by a crash: Open must
// not fail or panic, and every record Next returns must be one that was
// framed correctly (Open cuts the rest).
func FuzzOpen(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{5, 0, 0, 0, 0x8f, 0x21, 0x23, 0x5c, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.seg", 1)), data, 0o644))
		b, err := buffer.Open(buffer.Config{Dir: dir}, buffer.Settings{})
		require.NoError(t, err)
		defer b.Close()
		total := 0
		for !b.Empty() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			r, err := b.Next(ctx)
			cancel()
			require.NoError(t, err)
			total += 8 + len(r.Data)
			require.NoError(t, b.Commit(r))
		}
		require.LessOrEqual(t, total, len(data))
		require.NoError(t, b.Append(context.Background(), []byte("ok")))
	})
}

// TestSegmentRemovedBySomeoneElse: a sealed segment deleted behind the
// buffer's back is reported as lost and skipped, the newest one is still
// read through the descriptor appends use; neither stops the replay.
func TestSegmentRemovedBySomeoneElse(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	b := open(t, buffer.Config{Dir: dir, MaxFiles: 10, MaxFileSize: 100}, reg)
	defer b.Close()
	for i := range 5 {
		require.NoError(t, b.Append(context.Background(), fixed(i))) // segments of 2, 2, 1
	}
	segs := segments(t, dir)
	require.Len(t, segs, 3)
	require.NoError(t, os.Remove(segs[0]))
	require.NoError(t, os.Remove(segs[2]))
	var got []string
	for !b.Empty() {
		r := next(t, b)
		got = append(got, string(r.Data))
		require.NoError(t, b.Commit(r))
	}
	require.Equal(t, []string{string(fixed(2)), string(fixed(3)), string(fixed(4))}, got)
	require.Equal(t, 96.0, metricValue(t, reg, "sluice_buffer_corrupt_bytes_total"), "the removed segment's records are counted as lost")
}
