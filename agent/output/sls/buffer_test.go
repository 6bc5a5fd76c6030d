package sls_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/protocol"
)

// downWhile makes srv answer 503 while down is set.
func downWhile(srv *logServer, down *atomic.Bool) {
	srv.fail = func(int, *http.Request) (int, protocol.ErrorCode) {
		if down.Load() {
			return http.StatusServiceUnavailable, protocol.CodeServerBusy
		}
		return 0, ""
	}
}

// TestServerDownBufferedThenReplayedAfterRestart: while the server is down
// batches are written to the disk buffer and acked; the agent restarts (a
// new output on the same directory) and, once the server is back, every
// line arrives, in order, followed by what was consumed after the restart.
func TestServerDownBufferedThenReplayedAfterRestart(t *testing.T) {
	srv := newLogServer(t)
	var down atomic.Bool
	down.Store(true)
	downWhile(srv, &down)

	cfg := baseConfig(srv, t)
	cfg.BufferDir = filepath.Join(t.TempDir(), "buffer")
	cfg.AttemptsBeforeBuffer = 2
	cfg.MaxConcurrency = 1 // one sender: the buffer order is the consume order
	reg := prometheus.NewRegistry()
	o := start(t, cfg, reg)
	a := newAcks()
	b := pipeline.NewBatch()
	for i := range 30 {
		fill(b, "/var/log/down.log", i*10, 10, a.ack(i))
		require.NoError(t, o.Consume(context.Background(), b))
	}
	a.waitAll(t, 30) // durable on disk while the server is down
	require.Empty(t, srv.received())
	require.Positive(t, metric(t, reg, "sluice_output_sls_buffered_groups_total", "", ""))
	require.Positive(t, metric(t, reg, "sluice_buffer_pending_bytes", "", ""))
	shutdown(t, o)

	// The agent restarts while the server is still down, then it comes back.
	o = start(t, cfg, prometheus.NewRegistry())
	time.Sleep(50 * time.Millisecond)
	require.Empty(t, srv.received())
	down.Store(false)
	a2 := newAcks()
	for i := range 5 {
		fill(b, "/var/log/down.log", 300+i*10, 10, a2.ack(i))
		require.NoError(t, o.Consume(context.Background(), b))
	}
	a2.waitAll(t, 5)
	require.Eventually(t, func() bool { return len(lines(srv.received())["/var/log/down.log"]) >= 350 },
		20*time.Second, 10*time.Millisecond)
	shutdown(t, o)
	require.Equal(t, expected("/var/log/down.log", 350), lines(srv.received())["/var/log/down.log"])
}

// TestServerUnreachableBuffered: no server at all (connection refused) is a
// network error: buffered, not lost.
func TestServerUnreachableBuffered(t *testing.T) {
	srv := newLogServer(t)
	cfg := baseConfig(srv, t)
	srv.Close()
	cfg.BufferDir = filepath.Join(t.TempDir(), "buffer")
	cfg.AttemptsBeforeBuffer = 1
	reg := prometheus.NewRegistry()
	o := start(t, cfg, reg)
	a := newAcks()
	b := pipeline.NewBatch()
	fill(b, "/x.log", 0, 3, a.ack(0))
	require.NoError(t, o.Consume(context.Background(), b))
	a.waitAll(t, 1)
	require.Positive(t, metric(t, reg, "sluice_output_sls_retries_total", "reason", "network"))
	require.Equal(t, 1.0, metric(t, reg, "sluice_output_sls_buffered_groups_total", "", ""))
	shutdown(t, o)
}

// TestFullBufferBlocksConsume: with the server down and a tiny buffer,
// Consume ends up blocking (back-pressure) instead of dropping or failing
// batches; when the server returns, everything is delivered.
func TestFullBufferBlocksConsume(t *testing.T) {
	srv := newLogServer(t)
	var down atomic.Bool
	down.Store(true)
	downWhile(srv, &down)
	cfg := baseConfig(srv, t)
	cfg.BufferDir = filepath.Join(t.TempDir(), "buffer")
	cfg.BufferMaxFiles = 2
	cfg.BufferMaxFileSize = 2 << 10
	cfg.AttemptsBeforeBuffer = 1
	cfg.MaxQueueBytes = 4 << 10
	cfg.MaxConcurrency = 2
	o := start(t, cfg, nil)
	a := newAcks()
	b := pipeline.NewBatch()
	consumed := 0
	for ; consumed < 1000; consumed++ {
		fill(b, "/full.log", consumed*20, 20, a.ack(consumed))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := o.Consume(ctx, b)
		cancel()
		if err != nil {
			require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
			break
		}
	}
	require.Less(t, consumed, 1000, "Consume never blocked")
	a.mu.Lock()
	for id, err := range a.errs {
		require.NoError(t, err, "batch %d failed instead of waiting", id)
	}
	a.mu.Unlock()

	down.Store(false)
	a.waitAll(t, consumed)
	require.Eventually(t, func() bool { return len(lines(srv.received())["/full.log"]) >= consumed*20 },
		20*time.Second, 10*time.Millisecond)
	shutdown(t, o)
	got := lines(srv.received())["/full.log"]
	require.Len(t, got, consumed*20)
	seen := map[string]bool{}
	for _, l := range got {
		require.False(t, seen[l], "duplicate %s", l)
		seen[l] = true
	}
}

// TestConcurrentReplayDeliversAll: with ReplayConcurrency > 1 a backlog is
// replayed several groups at a time; every line arrives exactly once.
func TestConcurrentReplayDeliversAll(t *testing.T) {
	srv := newLogServer(t)
	var down atomic.Bool
	down.Store(true)
	downWhile(srv, &down)
	cfg := baseConfig(srv, t)
	cfg.BufferDir = filepath.Join(t.TempDir(), "buffer")
	cfg.AttemptsBeforeBuffer = 1
	cfg.ReplayConcurrency = 4
	cfg.MaxGroupLogs = 10
	o := start(t, cfg, nil)
	a := newAcks()
	b := pipeline.NewBatch()
	for i := range 20 {
		fill(b, "/cc.log", i*10, 10, a.ack(i))
		require.NoError(t, o.Consume(context.Background(), b))
	}
	a.waitAll(t, 20)
	down.Store(false)
	require.Eventually(t, func() bool { return len(lines(srv.received())["/cc.log"]) >= 200 },
		20*time.Second, 10*time.Millisecond)
	shutdown(t, o)
	got := lines(srv.received())["/cc.log"]
	sort.Strings(got)
	require.Equal(t, expected("/cc.log", 200), got)
}

// TestShutdownWithFullBufferIsBounded: server down, buffer full, groups
// queued: Shutdown past its deadline returns promptly, and every consumed
// batch gets exactly one ack (nil if it reached the disk, an error — so the
// input re-reads it — if not).
func TestShutdownWithFullBufferIsBounded(t *testing.T) {
	srv := newLogServer(t)
	var down atomic.Bool
	down.Store(true)
	downWhile(srv, &down)
	cfg := baseConfig(srv, t)
	cfg.BufferDir = filepath.Join(t.TempDir(), "buffer")
	cfg.BufferMaxFiles = 2
	cfg.BufferMaxFileSize = 2 << 10
	cfg.AttemptsBeforeBuffer = 1
	cfg.MaxQueueBytes = 8 << 10
	o := start(t, cfg, nil)
	a := newAcks()
	b := pipeline.NewBatch()
	consumed := 0
	for ; consumed < 1000; consumed++ {
		fill(b, "/s.log", consumed*20, 20, a.ack(consumed))
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := o.Consume(ctx, b)
		cancel()
		if err != nil {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	began := time.Now()
	require.Error(t, o.Shutdown(ctx))
	require.Less(t, time.Since(began), 5*time.Second)
	a.mu.Lock()
	defer a.mu.Unlock()
	require.Len(t, a.n, consumed)
	for id, n := range a.n {
		require.Equal(t, 1, n, "batch %d", id)
	}
}
