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
// Append writes a record to the newest segment and fsyncs it before
// returning, so a record Append accepted survives a crash. Segments roll over
// at MaxFileSize; at most MaxFiles exist, so the buffer holds at most about
// MaxFiles × MaxFileSize bytes. When it is full Append blocks until the
// consumer frees a segment (back-pressure: nothing is dropped).
//
// One consumer reads with Next and confirms with Commit, in order. The
// cursor file records the committed position (written atomically by
// rename, not fsynced: a stale cursor after a crash replays a few records
// again — at-least-once — it never loses any). Fully committed segments are
// deleted.
//
// A torn write (crash mid-append) leaves a bad record at the tail of the
// newest segment: Open truncates it back to the last good record and reports
// the cut bytes in a log line and a metric. A bad record inside an older
// segment (disk corruption) makes Next skip the rest of that segment, again
// logged and counted.
//
// Written by hand: the job is ~300 lines and the maintained WAL libraries
// (e.g. tidwall/wal) index by sequence number and do not bound total size or
// block writers, which is the part this buffer is for.
package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

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

// ErrClosed is returned by operations on a closed buffer.
var ErrClosed = errors.New("disk buffer closed")

// Buffer is a disk buffer. Append is safe for concurrent use; Next and
// Commit must be called by one consumer.
type Buffer struct {
	cfg   Config
	log   *slog.Logger
	quota *Quota

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every state change
	closed    bool
	segs      []uint64 // existing segments, ascending
	w         *os.File // newest segment, for appending
	wpos      position // end of the newest segment
	lock      *os.File // dir/LOCK, held while open
	r         *os.File // segment being read
	rseg      uint64
	rpos      position // next record to read
	committed position
	pending   int64 // bytes appended and not committed
	hdr       [headerSize]byte

	mPending   prometheus.Gauge
	mAppended  prometheus.Counter
	mCommitted prometheus.Counter
	mCorrupt   prometheus.Counter
	mFull      prometheus.Counter
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
	b := &Buffer{
		cfg:     cfg,
		quota:   quota,
		log:     log.With("component", "disk-buffer", "dir", cfg.Dir),
		changed: make(chan struct{}),
		mPending: promreg.Register(set.Registerer, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_buffer_pending_bytes", Help: "Bytes in the disk buffer not yet delivered.", ConstLabels: labels})),
		mAppended: promreg.Register(set.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_buffer_records_appended_total", Help: "Records written (fsynced) to the disk buffer.", ConstLabels: labels})),
		mCommitted: promreg.Register(set.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_buffer_records_delivered_total", Help: "Records read back and confirmed delivered.", ConstLabels: labels})),
		mCorrupt: promreg.Register(set.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_buffer_corrupt_bytes_total", Help: "Bytes cut or skipped because a record was torn or corrupt (data LOST).", ConstLabels: labels})),
		mFull: promreg.Register(set.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_buffer_full_waits_total", Help: "Appends that had to wait because the buffer was full.", ConstLabels: labels})),
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
		b.closeFiles()
		return nil, err
	}
	b.quota.take(len(b.segs))
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
		b.segs = append(b.segs, n)
	}
	slices.Sort(b.segs)

	cur, ok := b.readCursor()
	if len(b.segs) == 0 {
		b.segs = []uint64{max(cur.seg, 1)}
		cur = position{seg: b.segs[0]}
	} else if !ok || cur.seg < b.segs[0] || cur.seg > b.segs[len(b.segs)-1] {
		cur = position{seg: b.segs[0]}
	}
	// Segments before the cursor were delivered; a crash between commit and
	// delete can leave them behind.
	for len(b.segs) > 1 && b.segs[0] < cur.seg {
		if err := os.Remove(b.segPath(b.segs[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disk buffer: remove delivered segment: %w", err)
		}
		b.segs = b.segs[1:]
	}

	last := b.segs[len(b.segs)-1]
	w, err := os.OpenFile(b.segPath(last), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("disk buffer: open segment: %w", err)
	}
	b.w = w
	good, size, err := scanValid(w)
	if err != nil {
		return fmt.Errorf("disk buffer: scan %s: %w", w.Name(), err)
	}
	if good < size {
		b.log.Error("disk buffer segment has a torn or corrupt tail (crash during a write?); truncated at the last good record",
			"segment", w.Name(), "good_bytes", good, "cut_bytes", size-good)
		b.mCorrupt.Add(float64(size - good))
		if err := w.Truncate(good); err != nil {
			return fmt.Errorf("disk buffer: truncate torn tail of %s: %w", w.Name(), err)
		}
		if err := w.Sync(); err != nil {
			return fmt.Errorf("disk buffer: sync %s: %w", w.Name(), err)
		}
	}
	if _, err := w.Seek(good, io.SeekStart); err != nil {
		return fmt.Errorf("disk buffer: seek %s: %w", w.Name(), err)
	}
	b.wpos = position{seg: last, off: good}
	if cur.seg == last && cur.off > good {
		cur.off = good
	}
	b.committed, b.rpos = cur, cur

	for _, s := range b.segs {
		if s == last {
			b.pending += good
			continue
		}
		st, err := os.Stat(b.segPath(s))
		if err != nil {
			return fmt.Errorf("disk buffer: stat segment: %w", err)
		}
		b.pending += st.Size()
	}
	b.pending -= cur.off
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
	var data [20]byte
	binary.LittleEndian.PutUint64(data[0:8], p.seg)
	binary.LittleEndian.PutUint64(data[8:16], uint64(p.off))
	binary.LittleEndian.PutUint32(data[16:], crc32.Checksum(data[:16], crcTable))
	tmp := filepath.Join(b.cfg.Dir, cursorName+".tmp")
	if err := os.WriteFile(tmp, data[:], 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(b.cfg.Dir, cursorName))
}

// broadcast wakes every waiter; b.mu must be held.
func (b *Buffer) broadcast() {
	close(b.changed)
	b.changed = make(chan struct{})
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
// the buffer is full it blocks until space is freed or ctx ends.
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
			if err := b.wait(ctx, quotaCh); err != nil {
				return err
			}
			continue
		}
		if err := b.rollover(); err != nil {
			b.quota.release(1)
			return err
		}
		break
	}
	binary.LittleEndian.PutUint32(b.hdr[0:4], uint32(len(rec)))
	binary.LittleEndian.PutUint32(b.hdr[4:8], crc32.Checksum(rec, crcTable))
	_, err := b.w.Write(b.hdr[:])
	if err == nil {
		_, err = b.w.Write(rec)
	}
	if err == nil {
		err = b.w.Sync()
	}
	if err != nil {
		// Cut what was written so the segment ends on a record boundary.
		if terr := b.w.Truncate(b.wpos.off); terr == nil {
			_, _ = b.w.Seek(b.wpos.off, io.SeekStart)
		} else {
			b.log.Error("cannot roll back a failed buffer write; the next open will truncate it", "err", terr)
		}
		return fmt.Errorf("disk buffer: write %s: %w", b.w.Name(), err)
	}
	b.wpos.off += framed
	b.pending += framed
	b.mPending.Set(float64(b.pending))
	b.mAppended.Inc()
	b.broadcast()
	return nil
}

// rollover starts a new newest segment; b.mu must be held.
func (b *Buffer) rollover() error {
	next := b.wpos.seg + 1
	f, err := os.OpenFile(b.segPath(next), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("disk buffer: create segment: %w", err)
	}
	if err := syncDir(b.cfg.Dir); err != nil {
		_ = f.Close()
		return fmt.Errorf("disk buffer: sync %s: %w", b.cfg.Dir, err)
	}
	old := b.w
	oldPos := b.wpos
	b.w = f
	b.wpos = position{seg: next}
	b.segs = append(b.segs, next)
	if err := old.Close(); err != nil {
		b.log.Warn("close buffer segment", "err", err)
	}
	if b.committed == oldPos {
		// Everything so far is delivered: move the cursor to the new segment
		// and drop the old one.
		b.committed = b.wpos
		if b.rpos == oldPos {
			b.rpos = b.wpos
		}
		b.removeDelivered()
	}
	return nil
}

// removeDelivered deletes segments before the committed one; b.mu held.
func (b *Buffer) removeDelivered() {
	if err := b.writeCursor(b.committed); err != nil {
		b.log.Warn("cannot save the buffer cursor; a restart may replay delivered records", "err", err)
	}
	for len(b.segs) > 1 && b.segs[0] < b.committed.seg {
		s := b.segs[0]
		if b.r != nil && b.rseg == s {
			_ = b.r.Close()
			b.r = nil
		}
		if err := os.Remove(b.segPath(s)); err != nil && !errors.Is(err, os.ErrNotExist) {
			b.log.Warn("cannot remove a delivered buffer segment", "err", err)
		}
		b.segs = b.segs[1:]
		b.quota.release(1)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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
// next segment (end of a sealed segment, or corruption skipped).
func (b *Buffer) readAt(p position) (Record, bool, error) {
	if b.r == nil || b.rseg != p.seg {
		if b.r != nil {
			_ = b.r.Close()
		}
		f, err := os.Open(b.segPath(p.seg))
		if err != nil {
			return Record{}, false, fmt.Errorf("disk buffer: open segment: %w", err)
		}
		b.r, b.rseg = f, p.seg
	}
	end := b.wpos.off
	if p.seg != b.wpos.seg {
		st, err := b.r.Stat()
		if err != nil {
			return Record{}, false, fmt.Errorf("disk buffer: stat segment: %w", err)
		}
		end = st.Size()
	}
	if p.off >= end {
		b.nextSegment(p, 0)
		return Record{}, false, nil
	}
	var hdr [headerSize]byte
	n := int64(-1)
	if p.off+headerSize <= end {
		if _, err := b.r.ReadAt(hdr[:], p.off); err != nil {
			return Record{}, false, fmt.Errorf("disk buffer: read %s: %w", b.r.Name(), err)
		}
		n = int64(binary.LittleEndian.Uint32(hdr[0:4]))
	}
	if n >= 0 && n <= maxRecord && p.off+headerSize+n <= end {
		data := make([]byte, n)
		if _, err := b.r.ReadAt(data, p.off+headerSize); err != nil {
			return Record{}, false, fmt.Errorf("disk buffer: read %s: %w", b.r.Name(), err)
		}
		if crc32.Checksum(data, crcTable) == binary.LittleEndian.Uint32(hdr[4:8]) {
			return Record{Data: data, pos: position{p.seg, p.off + headerSize + n}, size: headerSize + n}, true, nil
		}
	}
	if p.seg == b.wpos.seg {
		// Appends fsync whole records under b.mu, so the newest segment
		// cannot hold a bad record below wpos unless the disk corrupted it.
		b.log.Error("corrupt record in the newest buffer segment; skipping to its end (data LOST)", "segment", b.r.Name(), "offset", p.off)
	} else {
		b.log.Error("corrupt record in a buffer segment; skipping the rest of the segment (data LOST)", "segment", b.r.Name(), "offset", p.off, "skipped_bytes", end-p.off)
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
	i, _ := slices.BinarySearch(b.segs, p.seg)
	if i+1 < len(b.segs) {
		b.rpos = position{seg: b.segs[i+1]}
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
	// A segment is deleted once a record of a later segment is committed
	// (or, for the newest, at rollover when everything was delivered).
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
