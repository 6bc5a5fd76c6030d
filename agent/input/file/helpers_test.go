package file

import (
	"context"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/agent/pipeline/pipelinetest"
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

// ackHolder passes batches on to its recorder but, once armed, keeps the
// next batch's acknowledgement: with one batch in flight allowed (see
// startHolding), the reader then waits on back-pressure in the middle of
// its file, which is where truncations and copies race it.
type ackHolder struct {
	*pipelinetest.Recorder
	mu    sync.Mutex
	armed bool
	held  pipeline.Ack
}

func (a *ackHolder) Consume(ctx context.Context, b *pipeline.Batch) error {
	a.mu.Lock()
	if a.armed && a.held == nil {
		a.held = b.Ack
		b.Ack = pipeline.AckFunc(func(error) {})
	}
	a.mu.Unlock()
	return a.Recorder.Consume(ctx, b)
}

// arm holds the next batch's acknowledgement.
func (a *ackHolder) arm() {
	a.mu.Lock()
	a.armed = true
	a.mu.Unlock()
}

// waitHeld waits until an acknowledgement is held.
func (a *ackHolder) waitHeld(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { a.mu.Lock(); defer a.mu.Unlock(); return a.held != nil }, 5*time.Second, time.Millisecond)
}

// release acknowledges the held batch, letting the reader go on.
func (a *ackHolder) release() {
	a.mu.Lock()
	a.held.Done(nil)
	a.mu.Unlock()
}

// startHolding starts cfg's input, reading 4 KiB at a time in batches of
// ten lines with one batch in flight, into an ackHolder (armed at once if
// armed is set).
func startHolding(t *testing.T, cfg Config, armed bool) (*harness, *ackHolder) {
	t.Helper()
	cfg.MaxBatchEvents = 10
	cfg.MaxInflightBatches = 1
	cfg.MaxReadBufferSize = 4096
	a := &ackHolder{Recorder: &pipelinetest.Recorder{}, armed: armed}
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	in, err := New(cfg, a, Settings{Checkpoints: store})
	require.NoError(t, err)
	require.NoError(t, in.Start(context.Background()))
	h := &harness{t: t, in: in, sink: a.Recorder, store: store}
	t.Cleanup(h.stop)
	return h, a
}
