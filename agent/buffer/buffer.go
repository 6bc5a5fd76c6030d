// Package buffer is sluice-agent's disk buffer (Logtail's buffer_file_path):
// a bounded, append-only, crash-safe FIFO of opaque records. The Log Service
// output writes encoded LogGroups here while the server cannot take them and
// replays them, in order, once it can — also after the agent restarts.
//
// # Layout
//
// Dir holds segment files named <20-digit sequence>.seg, a cursor file and
// a LOCK file (flock: a second Open of the same directory fails with an
// error instead of interleaving writes).
// A segment is a sequence of records, each framed as
//
//	uint32 little-endian payload length | uint32 little-endian CRC-32C of payload | payload
//
// Append writes a record at the end of the newest segment and fsyncs it
// before returning, so a record Append accepted survives a crash. Segments
// roll over at MaxFileSize; at most MaxFiles exist, so the buffer holds at
// most about MaxFiles × MaxFileSize bytes. When it is full Append blocks
// until the consumer frees a segment (back-pressure: nothing is dropped).
//
// One consumer reads with Next and confirms with Commit, in order. The
// cursor file records the committed position (written atomically by
// rename, not fsynced: a stale cursor after a crash replays a few records
// again — at-least-once — it never loses any). A segment is deleted as soon
// as its last record is committed, whatever the segments after it hold —
// also when the newest is empty because the disk filled just as it was
// created.
//
// # Write errors and a full disk
//
// A write that fails (ENOSPC, EIO, a failed fsync) is cut back to the last
// whole record before Append returns ErrUnwritable, so the file never holds
// a partial record below the write position and the buffer stays usable;
// nothing of the failed record is kept and the caller still owns it (the
// output keeps the group in memory and tries again: back-pressure, as for a
// full buffer). If even the cut fails, no further record is written until
// it succeeds. When the disk is full and every record is delivered, Append
// starts a new segment so the delivered one is deleted and its space
// reused. A failure episode is logged once when it starts and once when it
// ends, and shown by sluice_buffer_write_errors_total and
// sluice_buffer_write_failing_since_seconds.
//
// # Damage
//
// A crash mid-append leaves an unfinished record at the tail of the newest
// segment. Appends fsync whole records before returning, so such a tail was
// never acknowledged: Open truncates it back to the last good record, logs
// a warning and counts it in sluice_buffer_torn_bytes_total (not a loss:
// the input was not told it was stored). A bad record anywhere else
// (disk corruption) makes Next skip the rest of that segment; that is
// acknowledged data lost, logged as an error and counted in
// sluice_buffer_corrupt_bytes_total.
//
// Written by hand: the job is a few hundred lines and the maintained WAL
// libraries (e.g. tidwall/wal) index by sequence number and do not bound
// total size, block writers or survive ENOSPC without a restart, which is
// the part this buffer is for.
package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/internal/fsutil"
	"github.com/sluicelog/sluice/internal/promreg"
)

const (
	headerSize = 8
	segSuffix  = ".seg"
	cursorName = "cursor"
	// maxRecord bounds a record's declared length: anything larger in a
	// header is corruption, not data.
	maxRecord = 1 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Config configures a buffer.
type Config struct {
	// Dir is the buffer directory (created when missing). One buffer per
	// directory: two writers must not share it.
	Dir string
	// MaxFiles is the most segment files kept (buffer_file_num; default 25).
	MaxFiles int
	// MaxFileSize is the size at which a segment rolls over
	// (buffer_file_size; default 20 MiB). A record larger than this gets a
	// segment of its own.
	MaxFileSize int64
}

// Validate checks c.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errors.New("buffer_file_path: required: set a directory for the disk buffer")
	}
	if c.MaxFiles < 0 {
		return fmt.Errorf("buffer_file_num: %d is negative", c.MaxFiles)
	}
	if c.MaxFileSize < 0 {
		return fmt.Errorf("buffer_file_size: %d is negative", c.MaxFileSize)
	}
	return nil
}

// Settings carry what the buffer needs from the agent.
type Settings struct {
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil registers nothing
	// Quota, when set, bounds this buffer's segment files together with
	// the other buffers sharing it (the agent's buffer_file_num); nil: a
	// quota of Config.MaxFiles of its own.
	Quota *Quota
}

// Record is a record returned by Next. Data is the caller's.
type Record struct {
	Data []byte
	pos  position // just after the record
	size int64    // framed size
}

type position struct {
	seg uint64
	off int64
}

func (p position) less(q position) bool {
	return p.seg < q.seg || (p.seg == q.seg && p.off < q.off)
}

// segment is one segment file.
type segment struct {
	seq uint64
	// size is the length of a sealed segment (every segment but the
	// newest, whose length is wpos.off). Readers stop there, so bytes
	// beyond it — which a failed write can leave — are never decoded.
	size int64
}

var (
	// ErrClosed is returned by operations on a closed buffer.
	ErrClosed = errors.New("disk buffer closed")
	// ErrUnwritable wraps the cause when Append could not write a record
	// (no space left on the device, an I/O error). Nothing of the record
	// was kept; the buffer stays usable and Append may be tried again,
	// typically once Changed fires or after a pause.
	ErrUnwritable = errors.New("disk buffer cannot be written")
)

// Buffer is a disk buffer. Append is safe for concurrent use; Next and
// Commit must be called by one consumer.
type Buffer struct {
	cfg   Config
	log   *slog.Logger
	quota *Quota
	// fault, when set (tests), is consulted before each file operation
	// named by op and fails it with the error returned.
	fault func(op string) error

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every state change
	closed    bool
	segs      []segment // existing segments, ascending
	w         *os.File  // newest segment, for appending
	wpos      position  // end of the newest segment's records
	dirty     bool      // w may hold bytes of a failed write beyond wpos.off
	lock      *os.File  // dir/LOCK, held while open
	r         *os.File  // segment being read
	rseg      uint64
	rpos      position // next record to read
	committed position
	saved     position // what the cursor file holds
	pending   int64    // bytes appended and not committed
	hdr       [headerSize]byte
	waiting   int // Appends waiting for a file (buffer full)
	// failingSince is when the current run of failed appends began (zero
	// while appends succeed); failures counts them. runLogged says whether
	// the run was logged at ERROR (its end is then logged too); lastLogged
	// is when a run last was.
	failingSince  time.Time
	failures      int
	runLogged     bool
	lastLogged    time.Time
	cursorFailing bool

	mPending      prometheus.Gauge
	mFiles        prometheus.Gauge
	mAppended     prometheus.Counter
	mCommitted    prometheus.Counter
	mCorrupt      prometheus.Counter
	mTorn         prometheus.Counter
	mFull         prometheus.Counter
	mWaiting      prometheus.Gauge
	mWriteErrors  *prometheus.CounterVec
	mFailingSince prometheus.Gauge
}

// Open opens (or creates) the buffer in cfg.Dir, truncating a torn tail.
func Open(cfg Config, set Settings) (*Buffer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxFiles == 0 {
		cfg.MaxFiles = 25
	}
	if cfg.MaxFileSize == 0 {
		cfg.MaxFileSize = 20 << 20
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	labels := prometheus.Labels{"dir": cfg.Dir}
	quota := set.Quota
	if quota == nil {
		quota = NewQuota(cfg.MaxFiles)
	}
	reg := set.Registerer
	b := &Buffer{
		cfg:     cfg,
		quota:   quota,
		log:     log.With("component", "disk-buffer", "dir", cfg.Dir),
		changed: make(chan struct{}),
		mPending: promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_buffer_pending_bytes", Help: "Bytes in the disk buffer not yet delivered.", ConstLabels: labels})),
		mFiles: promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_buffer_files", Help: "Segment files of the disk buffer.", ConstLabels: labels})),
		mAppended: promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_buffer_records_appended_total", Help: "Records written (fsynced) to the disk buffer.", ConstLabels: labels})),
		mCommitted: promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_buffer_records_delivered_total", Help: "Records read back and confirmed delivered.", ConstLabels: labels})),
		mCorrupt: promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_buffer_corrupt_bytes_total", Help: "Bytes of acknowledged records skipped because they were corrupt on disk or their segment file was removed by someone else (data LOST).", ConstLabels: labels})),
		mTorn: promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_buffer_torn_bytes_total", Help: "Bytes of unfinished appends (a crash during a write) cut at open; never acknowledged, so not lost.", ConstLabels: labels})),
		mFull: promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_buffer_full_waits_total", Help: "Appends that had to wait because the buffer had buffer_file_num files.", ConstLabels: labels})),
		mWaiting: promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_buffer_waiting_appends", Help: "Appends waiting now for a file to be freed (buffer_file_num reached).", ConstLabels: labels})),
		mWriteErrors: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_buffer_write_errors_total", Help: "Appends that failed because the disk did not take the record (reason: no_space or io); the data waits in memory and in the input files.", ConstLabels: labels}, []string{"reason"})),
		mFailingSince: promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_buffer_write_failing_since_seconds", Help: "Unix time of the first failed append of the current run of failures; 0 while appends succeed.", ConstLabels: labels})),
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("disk buffer: create %s: %w", cfg.Dir, err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	b.lock = lock
	if err := b.load(); err != nil {
		_ = b.closeFiles() // the load error is the one to report
		return nil, err
	}
	b.quota.take(len(b.segs))
	b.mFiles.Set(float64(len(b.segs)))
	return b, nil
}

func (b *Buffer) segPath(seg uint64) string {
	return filepath.Join(b.cfg.Dir, fmt.Sprintf("%020d%s", seg, segSuffix))
}

func (b *Buffer) load() error {
	entries, err := os.ReadDir(b.cfg.Dir)
	if err != nil {
		return fmt.Errorf("disk buffer: read %s: %w", b.cfg.Dir, err)
	}
	var seqs []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			b.log.Warn("ignoring a file that is not a buffer segment", "file", e.Name())
			continue
		}
		seqs = append(seqs, n)
	}
	slices.Sort(seqs)

	cur, ok := b.readCursor()
	if len(seqs) == 0 {
		seqs = []uint64{max(cur.seg, 1)}
		cur = position{seg: seqs[0]}
	} else if !ok || cur.seg < seqs[0] || cur.seg > seqs[len(seqs)-1] {
		cur = position{seg: seqs[0]}
	}
	// A missing or unusable cursor means the same as one at the oldest
	// segment's start: no need to write it.
	b.saved = cur
	// Segments before the cursor were delivered; a crash between commit and
	// delete can leave them behind.
	for len(seqs) > 1 && seqs[0] < cur.seg {
		if err := os.Remove(b.segPath(seqs[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disk buffer: remove delivered segment: %w", err)
		}
		seqs = seqs[1:]
	}
	for _, s := range seqs[:len(seqs)-1] {
		st, err := os.Stat(b.segPath(s))
		if err != nil {
			return fmt.Errorf("disk buffer: stat segment: %w", err)
		}
		b.segs = append(b.segs, segment{seq: s, size: st.Size()})
		b.pending += st.Size()
	}

	last := seqs[len(seqs)-1]
	w, err := os.OpenFile(b.segPath(last), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("disk buffer: open segment: %w", err)
	}
	b.w = w
	b.segs = append(b.segs, segment{seq: last})
	good, size, err := scanValid(w)
	if err != nil {
		return fmt.Errorf("disk buffer: scan %s: %w", w.Name(), err)
	}
	if good < size {
		// Appends fsync whole records before they return, so what follows
		// the last good record was never acknowledged.
		b.log.Warn("disk buffer segment ends in an unfinished record (the agent stopped during a write); cut back to the last whole record, which loses nothing acknowledged",
			"segment", w.Name(), "good_bytes", good, "cut_bytes", size-good)
		b.mTorn.Add(float64(size - good))
		if err := w.Truncate(good); err != nil {
			return fmt.Errorf("disk buffer: truncate torn tail of %s: %w", w.Name(), err)
		}
		if err := w.Sync(); err != nil {
			return fmt.Errorf("disk buffer: sync %s: %w", w.Name(), err)
		}
	}
	b.wpos = position{seg: last, off: good}
	b.pending += good
	// A cursor past its segment's end (the segment was cut) points at
	// that end; one naming a missing segment, at the next one's start.
	switch i, ok := b.segIndex(cur.seg); {
	case !ok:
		cur = position{seg: b.segs[i].seq}
	case cur.seg == last:
		cur.off = min(cur.off, good)
	default:
		cur.off = min(cur.off, b.segs[i].size)
	}
	b.committed = cur
	b.pending -= cur.off
	b.advanceCommitted()
	b.removeDelivered()
	b.rpos = b.committed
	b.mPending.Set(float64(b.pending))
	if b.pending > 0 {
		b.log.Info("disk buffer holds undelivered data from an earlier run; replaying it", "bytes", b.pending, "segments", len(b.segs))
	}
	return nil
}

// scanValid returns the length of the valid record prefix of f and f's size.
func scanValid(f *os.File) (good, size int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size = st.Size()
	var hdr [headerSize]byte
	var buf []byte
	for good+headerSize <= size {
		if _, err := f.ReadAt(hdr[:], good); err != nil {
			return 0, 0, err
		}
		n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
		if n > maxRecord || good+headerSize+n > size {
			break
		}
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := f.ReadAt(buf, good+headerSize); err != nil {
			return 0, 0, err
		}
		if crc32.Checksum(buf, crcTable) != binary.LittleEndian.Uint32(hdr[4:8]) {
			break
		}
		good += headerSize + n
	}
	return good, size, nil
}

func (b *Buffer) readCursor() (position, bool) {
	data, err := os.ReadFile(filepath.Join(b.cfg.Dir, cursorName))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			b.log.Warn("cannot read the buffer cursor; replaying from the oldest segment", "err", err)
		}
		return position{}, false
	}
	if len(data) != 20 || crc32.Checksum(data[:16], crcTable) != binary.LittleEndian.Uint32(data[16:]) {
		b.log.Warn("buffer cursor is corrupt; replaying from the oldest segment (duplicates possible)")
		return position{}, false
	}
	return position{seg: binary.LittleEndian.Uint64(data[0:8]), off: int64(binary.LittleEndian.Uint64(data[8:16]))}, true
}

func (b *Buffer) writeCursor(p position) error {
	if err := b.check("cursor"); err != nil {
		return err
	}
	var data [20]byte
	binary.LittleEndian.PutUint64(data[0:8], p.seg)
	binary.LittleEndian.PutUint64(data[8:16], uint64(p.off))
	binary.LittleEndian.PutUint32(data[16:], crc32.Checksum(data[:16], crcTable))
	tmp := filepath.Join(b.cfg.Dir, cursorName+".tmp")
	if err := os.WriteFile(tmp, data[:], 0o644); err != nil {
		_ = os.Remove(tmp) // a partial file would hold a block of a full disk
		return err
	}
	return os.Rename(tmp, filepath.Join(b.cfg.Dir, cursorName))
}

// check runs the test fault hook for op.
func (b *Buffer) check(op string) error {
	if b.fault == nil {
		return nil
	}
	return b.fault(op)
}

// broadcast wakes every waiter; b.mu must be held.
func (b *Buffer) broadcast() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// Changed returns a channel closed at the buffer's next change of state
// (a record appended or committed, a segment deleted, Close). A writer whose
// Append failed waits for it — or for a timer, since space can also be
// freed by others — before trying again.
func (b *Buffer) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// wait releases b.mu until the state changes or ctx ends, then retakes it.
// quota, when not nil, also ends the wait (another buffer freed a file).
func (b *Buffer) wait(ctx context.Context, quota <-chan struct{}) error {
	ch := b.changed
	b.mu.Unlock()
	defer b.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-quota:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Append writes rec and fsyncs it. A nil return means rec is durable. When
// the buffer is full (buffer_file_num) it blocks until space is freed or ctx
// ends. When the disk does not take the record it returns an error wrapping
// ErrUnwritable and the cause (e.g. syscall.ENOSPC) at once, with nothing of
// rec kept: the caller decides how to wait (see Changed).
func (b *Buffer) Append(ctx context.Context, rec []byte) error {
	if len(rec) > maxRecord {
		return fmt.Errorf("disk buffer: record of %d bytes exceeds the %d-byte limit", len(rec), maxRecord)
	}
	framed := int64(headerSize + len(rec))
	b.mu.Lock()
	defer b.mu.Unlock()
	waited := false
	for {
		if b.closed {
			return ErrClosed
		}
		if err := b.cutDirtyTail(); err != nil {
			return b.writeFailed(err)
		}
		if b.wpos.off == 0 || b.wpos.off+framed <= b.cfg.MaxFileSize {
			break
		}
		// The newest segment is full: roll over if the newest segment is
		// entirely delivered (it goes, so the file count stays), or if a
		// file may be added, here and in the agent-wide quota.
		quotaCh := b.quota.waitCh() // before tryTake: a release in between must wake us
		if b.committed == b.wpos {
			b.quota.take(1)
		} else if len(b.segs) >= b.cfg.MaxFiles || !b.quota.tryTake() {
			if !waited {
				waited = true
				b.mFull.Inc()
				b.log.Warn("disk buffer full; writers wait until the server takes data again",
					"max_files", b.cfg.MaxFiles, "max_file_size", b.cfg.MaxFileSize,
					"agent_buffer_files", b.quota.Used())
			}
			b.waiting++
			b.mWaiting.Set(float64(b.waiting))
			err := b.wait(ctx, quotaCh)
			b.waiting--
			b.mWaiting.Set(float64(b.waiting))
			if err != nil {
				return err
			}
			continue
		}
		if err := b.rollover(); err != nil {
			b.quota.release(1)
			return b.writeFailed(err)
		}
		break
	}
	err := b.write(rec)
	if err != nil && !b.dirty && b.wpos.off > 0 && b.committed == b.wpos {
		// Everything written so far was delivered, yet the newest segment
		// still holds it: a new segment lets the old one (and its space)
		// go. Worth it on a full disk, harmless otherwise.
		b.countWriteError(err)
		b.quota.take(1)
		if rerr := b.rollover(); rerr != nil {
			b.quota.release(1)
		} else {
			err = b.write(rec)
		}
	}
	if err != nil {
		return b.writeFailed(err)
	}
	if !b.failingSince.IsZero() {
		if b.runLogged {
			b.log.Info("disk buffer writable again", "failed_appends", b.failures,
				"failing_for", time.Since(b.failingSince).Round(time.Millisecond).String())
		}
		b.failingSince, b.failures, b.runLogged = time.Time{}, 0, false
		b.mFailingSince.Set(0)
	}
	b.wpos.off += framed
	b.pending += framed
	b.mPending.Set(float64(b.pending))
	b.mAppended.Inc()
	b.broadcast()
	return nil
}

// write writes rec at the end of the newest segment and fsyncs it. On
// failure the segment is cut back to wpos, or marked dirty when even that
// fails; b.mu held.
func (b *Buffer) write(rec []byte) error {
	off := b.wpos.off
	binary.LittleEndian.PutUint32(b.hdr[0:4], uint32(len(rec)))
	binary.LittleEndian.PutUint32(b.hdr[4:8], crc32.Checksum(rec, crcTable))
	err := b.writeAt(b.hdr[:], off)
	if err == nil {
		err = b.writeAt(rec, off+headerSize)
	}
	if err == nil {
		if err = b.check("sync"); err == nil {
			err = b.w.Sync()
		}
	}
	if err == nil {
		return nil
	}
	err = fmt.Errorf("write %s: %w", b.w.Name(), err)
	b.dirty = true
	if terr := b.cutDirtyTail(); terr != nil {
		b.log.Error("cannot cut a failed write from the buffer segment; no record is written until it can be (a restart also cuts it)",
			"segment", b.w.Name(), "err", terr)
	}
	return err
}

// writeAt writes p at off of the newest segment (at an explicit offset,
// so a failed write's leftovers are overwritten, never appended after).
func (b *Buffer) writeAt(p []byte, off int64) error {
	if err := b.check("write"); err != nil {
		// Fail as a full disk does: part of p lands first.
		_, _ = b.w.WriteAt(p[:len(p)/2], off)
		return err
	}
	_, err := b.w.WriteAt(p, off)
	return err
}

// cutDirtyTail truncates the newest segment back to wpos after a failed
// write; b.mu held.
func (b *Buffer) cutDirtyTail() error {
	if !b.dirty {
		return nil
	}
	err := b.check("truncate")
	if err == nil {
		err = b.w.Truncate(b.wpos.off)
	}
	if err != nil {
		return fmt.Errorf("cut a failed write from %s: %w", b.w.Name(), err)
	}
	b.dirty = false
	return nil
}

// logEvery spaces the ERROR lines of runs of failed appends: while a
// buffer drains onto a full disk, every deleted segment lets a few appends
// through before the disk is full again — one problem, not one per segment.
const logEvery = time.Minute

// writeFailed counts and logs a failed append and returns its error; b.mu
// held. A run of failures is logged at ERROR when it starts, unless one was
// logged less than logEvery ago — then once it has lasted that long — and
// a logged run's end is logged by Append. Every failure is logged at DEBUG.
func (b *Buffer) writeFailed(err error) error {
	reason := b.countWriteError(err)
	b.failures++
	now := time.Now()
	if b.failingSince.IsZero() {
		b.failingSince = now
		b.mFailingSince.Set(float64(now.UnixNano()) / 1e9)
	}
	if !b.runLogged && (b.lastLogged.IsZero() || now.Sub(b.lastLogged) >= logEvery) {
		b.runLogged, b.lastLogged = true, now
		b.log.Error("disk buffer cannot be written; new data waits in memory and the inputs pause (files keep their data) until space is freed or the server takes the buffered data",
			"reason", reason, "err", err, "segment", b.wpos.seg, "offset", b.wpos.off, "pending_bytes", b.pending,
			"failed_appends", b.failures, "failing_since", b.failingSince.Format(time.RFC3339))
	} else {
		b.log.Debug("disk buffer write failed", "reason", reason, "err", err, "segment", b.wpos.seg, "offset", b.wpos.off)
	}
	return fmt.Errorf("%w: %w", ErrUnwritable, err)
}

// countWriteError counts a failed write by reason and returns the reason.
func (b *Buffer) countWriteError(err error) string {
	reason := "io"
	if isNoSpace(err) {
		reason = "no_space"
	}
	b.mWriteErrors.WithLabelValues(reason).Inc()
	return reason
}

// rollover starts a new newest segment; b.mu must be held.
func (b *Buffer) rollover() error {
	if err := b.cutDirtyTail(); err != nil {
		return err
	}
	next := b.wpos.seg + 1
	path := b.segPath(next)
	if err := b.check("create"); err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	err = b.check("syncdir")
	if err == nil {
		err = fsutil.SyncDir(b.cfg.Dir)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("sync %s: %w", b.cfg.Dir, err)
	}
	old := b.w
	oldPos := b.wpos
	b.segs[len(b.segs)-1].size = oldPos.off
	b.w = f
	b.wpos = position{seg: next}
	b.segs = append(b.segs, segment{seq: next})
	b.mFiles.Set(float64(len(b.segs)))
	if err := old.Close(); err != nil {
		b.log.Warn("close buffer segment", "err", err)
	}
	if b.rpos == oldPos {
		b.rpos = b.wpos
	}
	if b.advanceCommitted() {
		b.removeDelivered()
	}
	return nil
}

// segIndex returns the index of segment seq in b.segs; b.mu held.
func (b *Buffer) segIndex(seq uint64) (int, bool) {
	return slices.BinarySearchFunc(b.segs, seq, func(s segment, seq uint64) int {
		switch {
		case s.seq < seq:
			return -1
		case s.seq > seq:
			return 1
		}
		return 0
	})
}

// advanceCommitted moves the committed position from the end of a sealed
// segment to the start of the next one, so the delivered segment can go
// whatever the next one holds (nothing, when the disk filled just as it
// was created). It reports whether it moved; b.mu held.
func (b *Buffer) advanceCommitted() bool {
	moved := false
	for b.committed.seg != b.wpos.seg {
		i, ok := b.segIndex(b.committed.seg)
		if !ok || i+1 >= len(b.segs) || b.committed.off < b.segs[i].size {
			break
		}
		b.committed = position{seg: b.segs[i+1].seq}
		moved = true
	}
	if b.rpos.less(b.committed) {
		b.rpos = b.committed // the reader was at the end of the delivered segment
	}
	return moved
}

// removeDelivered deletes the segments before the committed one, then
// saves the cursor; b.mu held. Deleting first frees space for the cursor
// on a full disk, and is safe: a cursor naming a deleted segment is read
// as "start at the oldest segment".
func (b *Buffer) removeDelivered() {
	removed := 0
	for len(b.segs) > 1 && b.segs[0].seq < b.committed.seg {
		s := b.segs[0].seq
		if b.r != nil && b.rseg == s {
			_ = b.r.Close()
			b.r = nil
		}
		if err := os.Remove(b.segPath(s)); err != nil && !errors.Is(err, os.ErrNotExist) {
			b.log.Warn("cannot remove a delivered buffer segment", "err", err)
		}
		b.segs = b.segs[1:]
		removed++
	}
	if removed > 0 {
		b.quota.release(removed)
		b.mFiles.Set(float64(len(b.segs)))
	}
	if b.committed == b.saved {
		return
	}
	if err := b.writeCursor(b.committed); err != nil {
		if !b.cursorFailing {
			b.cursorFailing = true
			b.log.Warn("cannot save the buffer cursor; a restart may send delivered records again (duplicates, not loss)", "err", err)
		}
	} else {
		b.saved = b.committed
		if b.cursorFailing {
			b.cursorFailing = false
			b.log.Info("buffer cursor saved again")
		}
	}
}

// Next returns the oldest record not yet returned, blocking until there is
// one or ctx ends. Records are returned in Append order; after a restart,
// from the last committed one.
func (b *Buffer) Next(ctx context.Context) (Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if b.closed {
			return Record{}, ErrClosed
		}
		if b.rpos.less(b.wpos) {
			rec, ok, err := b.readAt(b.rpos)
			if err != nil {
				return Record{}, err
			}
			if ok {
				b.rpos = rec.pos
				return rec, nil
			}
			continue // moved to the next segment
		}
		if err := b.wait(ctx, nil); err != nil {
			return Record{}, err
		}
	}
}

// readAt reads the record at p; ok=false means the reader moved on to the
// next segment (end of a sealed segment, or damage skipped).
func (b *Buffer) readAt(p position) (Record, bool, error) {
	end := b.wpos.off
	if p.seg != b.wpos.seg {
		i, ok := b.segIndex(p.seg)
		if !ok {
			return Record{}, false, fmt.Errorf("disk buffer: read position in unknown segment %d", p.seg)
		}
		end = b.segs[i].size
	}
	if p.off >= end {
		b.nextSegment(p, 0)
		return Record{}, false, nil
	}
	// The newest segment is read through the descriptor appends use;
	// sealed ones are opened by name.
	f := b.w
	if p.seg != b.wpos.seg {
		if b.r == nil || b.rseg != p.seg {
			if b.r != nil {
				_ = b.r.Close()
				b.r = nil
			}
			r, err := os.Open(b.segPath(p.seg))
			if errors.Is(err, os.ErrNotExist) {
				b.log.Error("buffer segment removed by someone else; its records are LOST", "segment", b.segPath(p.seg), "lost_bytes", end-p.off)
				b.nextSegment(p, end-p.off)
				return Record{}, false, nil
			}
			if err != nil {
				return Record{}, false, fmt.Errorf("disk buffer: open segment: %w", err)
			}
			b.r, b.rseg = r, p.seg
		}
		f = b.r
	}
	var hdr [headerSize]byte
	n := int64(-1)
	if p.off+headerSize <= end {
		if _, err := f.ReadAt(hdr[:], p.off); err != nil {
			return Record{}, false, fmt.Errorf("disk buffer: read %s: %w", f.Name(), err)
		}
		n = int64(binary.LittleEndian.Uint32(hdr[0:4]))
	}
	if n >= 0 && n <= maxRecord && p.off+headerSize+n <= end {
		data := make([]byte, n)
		if _, err := f.ReadAt(data, p.off+headerSize); err != nil {
			return Record{}, false, fmt.Errorf("disk buffer: read %s: %w", f.Name(), err)
		}
		if crc32.Checksum(data, crcTable) == binary.LittleEndian.Uint32(hdr[4:8]) {
			return Record{Data: data, pos: position{p.seg, p.off + headerSize + n}, size: headerSize + n}, true, nil
		}
	}
	if p.seg == b.wpos.seg {
		// Appends fsync whole records under b.mu, so the newest segment
		// cannot hold a bad record below wpos unless the disk corrupted it.
		b.log.Error("corrupt record in the newest buffer segment; skipping to its end (data LOST)", "segment", f.Name(), "offset", p.off)
	} else {
		b.log.Error("corrupt record in a buffer segment; skipping the rest of the segment (data LOST)", "segment", f.Name(), "offset", p.off, "skipped_bytes", end-p.off)
	}
	b.nextSegment(p, end-p.off)
	return Record{}, false, nil
}

// nextSegment moves the reader past the segment of p, skipping `lost`
// bytes; b.mu held.
func (b *Buffer) nextSegment(p position, lost int64) {
	if lost > 0 {
		b.mCorrupt.Add(float64(lost))
		b.pending -= lost
		b.mPending.Set(float64(b.pending))
	}
	if p.seg == b.wpos.seg {
		// Corruption in the newest segment: start a fresh one after it.
		b.rpos = b.wpos
		if lost > 0 {
			if err := b.rollover(); err != nil {
				b.log.Error("cannot start a new buffer segment after corruption", "err", err)
			}
			b.rpos = b.wpos
		}
		return
	}
	i, _ := b.segIndex(p.seg)
	if i+1 < len(b.segs) {
		b.rpos = position{seg: b.segs[i+1].seq}
	} else {
		b.rpos = b.wpos
	}
}

// Commit confirms that r (and every record before it) was delivered. It
// persists the cursor and deletes segments that are fully delivered, freeing
// space for blocked Appends.
func (b *Buffer) Commit(r Record) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if !b.committed.less(r.pos) {
		return nil
	}
	b.committed = r.pos
	b.pending -= r.size
	b.mPending.Set(float64(b.pending))
	b.mCommitted.Inc()
	b.advanceCommitted()
	b.removeDelivered()
	b.broadcast()
	return nil
}

// PendingBytes is the size of the records appended and not yet committed.
func (b *Buffer) PendingBytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pending
}

// Empty reports whether every appended record has been committed.
func (b *Buffer) Empty() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.committed == b.wpos
}

// Close releases the files and wakes blocked callers with ErrClosed. It is
// idempotent. Records not committed stay for the next Open.
func (b *Buffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.broadcast()
	// Segments left for the next Open stop counting until then.
	b.quota.release(len(b.segs))
	return b.closeFiles()
}

func (b *Buffer) closeFiles() error {
	var err error
	if b.w != nil {
		err = b.w.Close()
		b.w = nil
	}
	if b.r != nil {
		_ = b.r.Close()
		b.r = nil
	}
	if b.lock != nil {
		_ = b.lock.Close() // releases the flock
		b.lock = nil
	}
	return err
}
