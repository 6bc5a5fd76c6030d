package sls_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/output/sls"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/internal/tmpfstest"
)

// consumeUntilBlocked consumes batches of random sizes, numbered from
// *next, until Consume has blocked for 300 ms (back-pressure reached); it
// returns the batches consumed. Every batch is acked into a.
func consumeUntilBlocked(t *testing.T, o *sls.Output, a *acks, rng *rand.Rand, path string, next *int, firstBatch int) int {
	t.Helper()
	b := pipeline.NewBatch()
	id := firstBatch
	for ; id < firstBatch+100_000; id++ {
		n := 5 + rng.IntN(60)
		fill(b, path, *next, n, a.ack(id))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := o.Consume(ctx, b)
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			return id - firstBatch
		}
		*next += n
	}
	t.Fatal("Consume never blocked")
	return 0
}

// noFailedAcks checks that no batch was acked with an error: with a full
// disk batches wait, they do not fail (which would make the input read them
// again and again).
func noFailedAcks(t *testing.T, a *acks) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, err := range a.errs {
		require.NoError(t, err, "batch %d failed instead of waiting", id)
	}
}

// TestFullDiskWaitsAndRecovers: the server is down and the disk buffer sits
// on a small disk that fills. Batches must wait (Consume blocks, no batch
// is acked with an error, none acked before it is on disk), the buffer's
// metrics say it cannot be written, and once the server is back every line
// arrives, exactly once, with no restart — in several rounds, the disk
// filling each time at another point of a segment (random group and segment
// sizes; the seed is logged).
func TestFullDiskWaitsAndRecovers(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	disk := tmpfstest.Mount(t, 16*tmpfstest.PageSize)

	srv := newLogServer(t)
	var down atomic.Bool
	downWhile(srv, &down)
	cfg := baseConfig(srv, t)
	cfg.Compression = "none"
	cfg.BufferDir = filepath.Join(disk, "buffer")
	cfg.BufferMaxFileSize = int64(4+rng.IntN(12)) << 10
	cfg.BufferMaxFiles = 1000 // the disk fills first
	cfg.MaxGroupLogs = 40 + rng.IntN(80)
	cfg.AttemptsBeforeBuffer = 1
	cfg.MaxQueueBytes = 16 << 10
	cfg.MaxConcurrency = 2
	t.Logf("segments of %d bytes, groups of at most %d lines", cfg.BufferMaxFileSize, cfg.MaxGroupLogs)
	reg := prometheus.NewRegistry()
	o := start(t, cfg, reg)
	a := newAcks()
	const path = "/var/log/full.log"
	next, batches := 0, 0
	for round := range 4 {
		down.Store(true)
		batches += consumeUntilBlocked(t, o, a, rng, path, &next, batches)
		require.Positive(t, metric(t, reg, "sluice_buffer_write_failing_since_seconds", "", ""),
			"round %d: blocked because the disk is full, not the buffer's file quota", round)
		noFailedAcks(t, a)
		pending := metric(t, reg, "sluice_buffer_pending_bytes", "", "")
		require.Positive(t, pending)

		down.Store(false)
		a.waitAll(t, batches)
		require.Eventually(t, func() bool { return len(lines(srv.received())[path]) >= next },
			20*time.Second, 10*time.Millisecond, "round %d: lines delivered after the server returned", round)
		require.Eventually(t, func() bool { return metric(t, reg, "sluice_buffer_pending_bytes", "", "") == 0 },
			10*time.Second, 10*time.Millisecond, "round %d: buffer drained", round)
		t.Logf("round %d: %d lines in %d batches; %.0f bytes were waiting on the full disk; %.0f write errors so far",
			round, next, batches, pending, metric(t, reg, "sluice_buffer_write_errors_total", "reason", "no_space"))
	}
	shutdown(t, o)
	got := lines(srv.received())[path]
	require.ElementsMatch(t, expected(path, next), got, "every line once")
	require.Zero(t, metric(t, reg, "sluice_buffer_corrupt_bytes_total", "", ""))
}

// TestFullDiskEmptyBufferKeepsGroupsInMemory: the disk is full before the
// buffer holds anything (another program filled it) and the server is
// down: groups stay in memory, batches wait unacked, and they are delivered
// when the server returns.
func TestFullDiskEmptyBufferKeepsGroupsInMemory(t *testing.T) {
	disk := tmpfstest.Mount(t, 8*tmpfstest.PageSize)
	srv := newLogServer(t)
	var down atomic.Bool
	down.Store(true)
	downWhile(srv, &down)
	cfg := baseConfig(srv, t)
	cfg.BufferDir = filepath.Join(disk, "buffer")
	cfg.AttemptsBeforeBuffer = 1
	cfg.MaxQueueBytes = 8 << 10
	reg := prometheus.NewRegistry()
	o := start(t, cfg, reg)
	err := os.WriteFile(filepath.Join(disk, "ballast"), make([]byte, 9*tmpfstest.PageSize), 0o644)
	require.True(t, errors.Is(err, syscall.ENOSPC), "%v", err)

	a := newAcks()
	next := 0
	rng := rand.New(rand.NewPCG(1, 2))
	n := consumeUntilBlocked(t, o, a, rng, "/m.log", &next, 0)
	require.Zero(t, a.count(), "nothing is acknowledged that is neither on disk nor delivered")
	require.Positive(t, metric(t, reg, "sluice_buffer_write_errors_total", "reason", "no_space"))
	down.Store(false)
	a.waitAll(t, n)
	require.Eventually(t, func() bool { return len(lines(srv.received())["/m.log"]) >= next },
		20*time.Second, 10*time.Millisecond)
	shutdown(t, o)
	require.ElementsMatch(t, expected("/m.log", next), lines(srv.received())["/m.log"])
}

// TestShutdownWithFullDiskIsBounded: server down, disk full, groups waiting
// in memory: Shutdown past its deadline returns promptly and every batch
// gets exactly one ack — nil if it reached the disk, an error (so the input
// reads it again after the restart) if not.
func TestShutdownWithFullDiskIsBounded(t *testing.T) {
	disk := tmpfstest.Mount(t, 8*tmpfstest.PageSize)
	srv := newLogServer(t)
	var down atomic.Bool
	down.Store(true)
	downWhile(srv, &down)
	cfg := baseConfig(srv, t)
	cfg.BufferDir = filepath.Join(disk, "buffer")
	cfg.BufferMaxFileSize = 8 << 10
	cfg.AttemptsBeforeBuffer = 1
	cfg.MaxQueueBytes = 8 << 10
	o := start(t, cfg, nil)
	a := newAcks()
	next := 0
	n := consumeUntilBlocked(t, o, a, rand.New(rand.NewPCG(3, 4)), "/s.log", &next, 0)
	noFailedAcks(t, a)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	began := time.Now()
	require.Error(t, o.Shutdown(ctx))
	require.Less(t, time.Since(began), 10*time.Second)
	a.mu.Lock()
	defer a.mu.Unlock()
	require.Len(t, a.n, n)
	failed := 0
	for id, k := range a.n {
		require.Equal(t, 1, k, "batch %d", id)
		if a.errs[id] != nil {
			failed++
		}
	}
	require.Positive(t, failed, "batches that never reached the disk are acked with an error")
	require.Less(t, failed, n, "batches on disk are acked nil")
}
