package file

import (
	"sync"
	"time"

	"github.com/sluicelog/sluice/agent/checkpoint"
)

// window tracks the sent, unacknowledged batches of one file in send order.
// The committed offset advances over the acknowledged prefix only, so a
// batch acked early never moves the checkpoint past an older one still in
// flight. A failed batch stops the advance; the reader then rewinds to the
// committed offset (a new epoch: acks of the abandoned batches are ignored).
type window struct {
	mu        sync.Mutex
	epoch     uint64
	base      uint64 // sequence number of pending[0]
	pending   []pend
	committed int64
	failed    bool
	closed    bool
	entry     checkpoint.Entry // what Put saves; Offset = committed
	put       func(checkpoint.Entry)
	wake      chan struct{} // a batch was acked or failed; made by prepare
}

// prepare readies a new window for use.
func (w *window) prepare() { w.wake = make(chan struct{}, 1) }

type pend struct {
	end  int64
	done bool
}

type batchAck struct {
	f     *tracked
	epoch uint64
	seq   uint64
}

// Done records the outcome of one batch.
func (a *batchAck) Done(err error) {
	in, w := a.f.input, &a.f.win
	w.mu.Lock()
	if a.epoch == w.epoch && !w.closed {
		if err != nil {
			if !w.failed {
				in.m.batchFailures.Inc()
				in.log.Warn("batch not delivered; the file is read again from its last acknowledged offset",
					"path", w.entry.Path, "offset", w.committed, "error", err)
			}
			w.failed = true
		} else {
			w.pending[a.seq-w.base].done = true
			advanced := false
			for len(w.pending) > 0 && w.pending[0].done {
				w.committed = w.pending[0].end
				w.pending = w.pending[1:]
				w.base++
				advanced = true
			}
			if advanced {
				w.save()
			}
		}
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	in.ackDone()
}

// save puts the committed offset into the store; w.mu is held, which keeps
// Puts of one file in order.
func (w *window) save() {
	if w.put == nil || w.closed {
		return
	}
	e := w.entry
	e.Offset = w.committed
	e.Updated = w.entry.Updated // zero: the store stamps it
	w.put(e)
}

// reserve appends a pending batch ending at end if the window has room.
// It reports the ack to attach, whether there was room, and whether the
// window failed (the caller must rewind).
func (w *window) reserve(f *tracked, end int64, max int) (ack *batchAck, ok, failed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed {
		return nil, false, true
	}
	if len(w.pending) >= max {
		return nil, false, false
	}
	w.pending = append(w.pending, pend{end: end})
	return &batchAck{f: f, epoch: w.epoch, seq: w.base + uint64(len(w.pending)-1)}, true, false
}

// abandon starts a new epoch at off: pending batches are forgotten (their
// acks will be ignored) and the committed offset is off.
func (w *window) abandon(off int64) {
	w.mu.Lock()
	w.epoch++
	w.pending = nil
	w.base = 0
	w.failed = false
	if off != w.committed {
		w.committed = off
		w.save()
	}
	w.mu.Unlock()
}

func (w *window) isFailed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

func (w *window) empty() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending) == 0
}

func (w *window) getCommitted() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.committed
}

// update changes what is saved (path, signature, size) and saves it.
func (w *window) update(fn func(e *checkpoint.Entry)) {
	w.mu.Lock()
	before := w.entry
	fn(&w.entry)
	if w.entry != before && !w.closed {
		w.save()
	}
	w.mu.Unlock()
}

// start begins tracking at start with entry (its Offset is set to start),
// saving through put, and saves it at once: the file is on record from
// the moment it is tracked.
func (w *window) start(entry checkpoint.Entry, start int64, put func(checkpoint.Entry)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.committed = start
	entry.Offset = start
	w.entry = entry
	w.put = put
	w.save()
}

// refused marks the window failed when a batch of epoch was not taken by
// the next stage (no ack will come): the reader rewinds to the committed
// offset. A refusal from an abandoned epoch changes nothing.
func (w *window) refused(epoch uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if epoch == w.epoch {
		w.failed = true
	}
}

// sig is the signature on record.
func (w *window) sig() checkpoint.Signature {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.entry.Sig
}

// finished is the entry to keep for a file that will not be read further:
// Done at the committed offset. settled reports that nothing is in flight
// and everything read up to readOff was acknowledged.
func (w *window) finished(readOff int64) (e checkpoint.Entry, settled bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e = w.entry
	e.Offset, e.Done, e.Updated = w.committed, true, time.Time{}
	return e, len(w.pending) == 0 && w.committed == readOff
}

func (w *window) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
