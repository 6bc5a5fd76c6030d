package file

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/pipeline"
)

// contentKey is the field every event carries (the raw event text).
const contentKey = "content"

// worker reads files handed to it by the scanner, one at a time. Its
// buffers are reused for every file and read, so reading costs no
// allocation per line.
type worker struct {
	in      *Input
	ctx     context.Context
	buf     []byte // read buffer, max_read_buffer_size
	sigBuf  []byte
	dec     []byte // decoded / repaired line
	gbk     transform.Transformer
	batch   *pipeline.Batch
	cur     *tracked
	end     int64 // offset just after the last event in batch
	sec     uint32
	nsec    uint32
	stop    bool // a send failed: stop reading this file, rewind
	emitFn  func([]byte, int64)
	eventFn func(Event)
	nLines  int
	nBytes  int
	nSplit  int
	nBadUTF int
}

func newWorker(in *Input) *worker {
	w := &worker{
		in:     in,
		buf:    make([]byte, in.cfg.MaxReadBufferSize),
		sigBuf: make([]byte, checkpoint.SignatureMax),
		batch:  pipeline.NewBatch(),
	}
	if in.gbk {
		w.gbk = simplifiedchinese.GBK.NewDecoder()
	}
	w.emitFn = w.emit
	w.eventFn = w.emitEvent
	return w
}

func (w *worker) run(ctx context.Context) {
	w.ctx = ctx
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-w.in.work:
			in := w.in
			in.mu.Lock()
			f.queued, f.busy, f.changed = false, true, false
			in.mu.Unlock()
			w.process(f)
			w.flushCounters()
			in.mu.Lock()
			f.busy = false
			requeue := f.more && ctx.Err() == nil
			if requeue {
				select {
				case in.work <- f:
					f.queued = true
				default:
				}
			}
			in.mu.Unlock()
		}
	}
}

func (w *worker) flushCounters() {
	m := w.in.m
	if w.nBytes > 0 {
		m.bytesRead.Add(float64(w.nBytes))
	}
	if w.nLines > 0 {
		m.linesRead.Add(float64(w.nLines))
	}
	if w.nSplit > 0 {
		m.linesSplit.Add(float64(w.nSplit))
	}
	if w.nBadUTF > 0 {
		m.nonUTF8.Add(float64(w.nBadUTF))
	}
	w.nBytes, w.nLines, w.nSplit, w.nBadUTF = 0, 0, 0, 0
}

// process reads what is new in f, handles truncation and rewrites, flushes
// an idle unterminated line and finishes rotated files.
func (w *worker) process(f *tracked) {
	in := w.in
	f.more = false
	w.cur, w.stop = f, false
	defer func() { w.cur = nil; w.batch.Reset() }()
	if !f.init && !w.firstSight(f) {
		return
	}
	if f.win.isFailed() {
		if time.Now().Before(f.retryAt) {
			return
		}
		w.rewind(f, f.win.getCommitted())
	}
	if f.fd == nil && !w.reopen(f) {
		return
	}
	if f.judge && !w.judgeCopy(f) {
		return
	}
	now := time.Now()
	var size int64
	if f.z != nil {
		size = f.z.size() // unknown (MaxInt64) until the end was reached
	} else {
		var st unix.Stat_t
		if err := unix.Fstat(int(f.fd.Fd()), &st); err != nil {
			in.log.Error("fstat failed", "path", f.tagPath, "error", err)
			return
		}
		size = st.Size
	}
	if f.readEnd.Load() != size && f.z == nil {
		f.lastGrow.Store(now.UnixNano())
	}
	off := f.readOff.Load()
	switch {
	case f.z != nil:
		// A compressed copy does not change.
	case size < off:
		// copytruncate (or truncation): everything now in the file is new.
		in.m.rotations.WithLabelValues(rotTruncate).Inc()
		in.log.Info("file truncated; reading it again from its start", "path", f.tagPath, "size", size, "offset", off)
		if !w.restart(f) {
			return
		}
		// Signed at once: with no signature the reads below could not
		// tell this content from the next one, should the file be
		// truncated and refilled past the offset while they wait.
		w.checkSignature(f, size)
	case size > 0:
		// Also when the size did not move: a file rewritten to the same
		// length has changed only at its start.
		if !w.checkSignature(f, size) {
			in.m.rotations.WithLabelValues(rotSignature).Inc()
			in.log.Info("file content changed at its start (rewritten or inode reused); reading it from its start", "path", f.tagPath)
			if !w.restart(f) {
				return
			}
			w.checkSignature(f, size)
		}
	}
	if f.z == nil {
		f.win.update(func(e *checkpoint.Entry) { e.Size = size })
	}
	if f.afterPartial && size > f.readOff.Load() {
		// The line flushed at idle timeout was continued later: the newline
		// that ends it belongs to it, not to an empty line of its own.
		f.afterPartial = false
		var nl [2]byte
		off := f.readOff.Load()
		k, _ := f.src().ReadAt(nl[:], off)
		skip := int64(0)
		if k >= 1 && nl[0] == '\n' {
			skip = 1
		} else if k == 2 && nl[0] == '\r' && nl[1] == '\n' {
			skip = 2
		}
		f.readOff.Store(off + skip)
		f.readEnd.Store(off + skip)
	}

	leftover := 0
	if size > f.readOff.Load() {
		before := f.readEnd.Load()
		leftover = w.readLoop(f)
		if f.z != nil {
			// Idle (and closed after CloseRemovedAfter) once reads stop
			// making progress: at its end, or cut short for good.
			if f.readEnd.Load() != before {
				f.lastGrow.Store(time.Now().UnixNano())
			}
			if total := f.z.size(); total != math.MaxInt64 {
				f.win.update(func(e *checkpoint.Entry) { e.Size = total })
			}
		}
	}
	in.mu.Lock()
	gone := f.gone
	in.mu.Unlock()
	if !w.stop {
		idle := time.Duration(time.Now().UnixNano() - f.lastGrow.Load())
		limit := in.cfg.FlushTimeout
		if gone {
			limit = min(limit, in.cfg.CloseRemovedAfter)
		}
		pending := leftover > 0 || (f.splitter != nil && f.splitter.Pending()) || (f.decoder != nil && f.decoder.Pending())
		if pending && idle >= limit && !f.more {
			if w.endsAtRead(f) {
				w.flushTail(f, leftover)
				pending = false
			} else {
				// Changed while the read waited on back-pressure (its
				// idle time is then stale): truncated — the line's rest
				// is in the copy — or grown. Looked at again first.
				f.more = true
			}
		}
		f.pendingFlush.Store(pending)
	}
	if !w.stop {
		if err := w.send(f); err != nil {
			w.stop = true
		}
	}
	if w.stop {
		if w.ctx.Err() == nil {
			f.retryAt = time.Now().Add(time.Second)
		}
		return
	}
	if gone && !f.more && !f.pendingFlush.Load() &&
		time.Duration(time.Now().UnixNano()-f.lastGrow.Load()) >= in.cfg.CloseRemovedAfter && f.win.empty() {
		// Rotated away or deleted and read to the end: close so the disk
		// space of a deleted file is freed.
		var st unix.Stat_t
		deleted := f.z == nil && unix.Fstat(int(f.fd.Fd()), &st) == nil && st.Nlink == 0
		if f.z != nil {
			if p := f.z.problem(); p != "" {
				in.log.Warn("compressed rotated file could not be read to its end; lines after that point, if any, are lost",
					"path", f.tagPath, "problem", p, "read_bytes", f.readEnd.Load())
			}
		}
		in.mu.Lock()
		if f.fd != nil {
			in.closeFD(f)
		}
		f.removed, f.deleted = true, deleted
		in.mu.Unlock()
	}
}

// reopen opens a file whose descriptor was closed while idle, checking that
// its path still names the same file.
func (w *worker) reopen(f *tracked) bool {
	in := w.in
	in.mu.Lock()
	path, gone := f.path, f.gone
	in.mu.Unlock()
	if gone || path == "" || in.open.Load() >= int64(in.cfg.MaxOpenFiles) {
		return false
	}
	fd, err := os.Open(path)
	if err != nil {
		return false
	}
	var st unix.Stat_t
	if unix.Fstat(int(fd.Fd()), &st) != nil || fileID(&st) != f.id {
		_ = fd.Close() // replaced meanwhile; the next pass sees the new file
		return false
	}
	in.mu.Lock()
	in.setFD(f, fd)
	in.mu.Unlock()
	return true
}

// src is what f is read through: its descriptor, or the decompressor of a
// compressed rotated file.
func (f *tracked) src() io.ReaderAt {
	if f.z != nil {
		return f.z
	}
	return f.fd
}

// checkSignature compares the file's first bytes with f.sig and extends the
// signature while the file is shorter than SignatureMax.
func (w *worker) checkSignature(f *tracked, size int64) bool {
	if f.z != nil {
		return true
	}
	n := int(min(size, int64(checkpoint.SignatureMax)))
	got, _ := f.fd.ReadAt(w.sigBuf[:n], 0)
	prefix := w.sigBuf[:got]
	if f.sig.Size > 0 && !f.sig.Matches(prefix) {
		return false
	}
	if uint32(got) > f.sig.Size {
		f.sig = checkpoint.Sign(prefix)
		sig := f.sig
		f.win.update(func(e *checkpoint.Entry) { e.Sig = sig })
	}
	return true
}

// endsAtRead reports whether f still holds what was read and nothing
// more, so that an unterminated last line is the file's last line.
func (w *worker) endsAtRead(f *tracked) bool {
	if f.z != nil {
		return true
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.fd.Fd()), &st) != nil {
		return false
	}
	return st.Size == f.readEnd.Load() && w.sameContent(f)
}

// sameContent reports whether f still starts with the bytes its
// signature was made from (a compressed copy always does).
func (w *worker) sameContent(f *tracked) bool {
	if f.z != nil || f.sig.Size == 0 {
		return true
	}
	k, _ := f.fd.ReadAt(w.sigBuf[:f.sig.Size], 0)
	return f.sig.Matches(w.sigBuf[:k])
}

// restart reads f again from its start: it was truncated or rewritten.
// The rest of its old content, from where its reader stopped, is in a copy
// if the rotation made one: the copy is looked for (adoptCopy), and where
// it stopped is recorded for a copy not judged yet (judgeCopy). That offset
// is an acknowledged one: restart first waits for the batches in flight, so
// a crash or a refused batch cannot lose the lines between the last
// acknowledged batch and the copy's start. The checkpoint moves to 0 first
// and then forgets the old signature, so a crash at any point repeats lines
// rather than skipping any. False when the input is stopping.
func (w *worker) restart(f *tracked) bool {
	in := w.in
	for !f.win.empty() && !f.win.isFailed() {
		select {
		case <-f.win.wake:
		case <-w.ctx.Done():
			return false
		}
	}
	acked, sig := f.win.getCommitted(), f.sig
	w.rewind(f, 0)
	f.sig = checkpoint.Signature{}
	in.adoptCopy(f.tagPath, sig, acked)
	f.win.update(func(e *checkpoint.Entry) { e.Sig = checkpoint.Signature{} })
	return true
}

// rewind makes off the next offset to read, forgetting in-flight batches
// and the splitter's pending lines; all of it is read again.
func (w *worker) rewind(f *tracked, off int64) {
	f.win.abandon(off)
	f.readOff.Store(off)
	f.readEnd.Store(off)
	f.pendingFlush.Store(false)
	w.batch.Reset()
	if f.splitter != nil {
		f.splitter, _ = w.in.newSplitter() // validated in New
		f.splitter.Start(off)
	}
	if f.decoder != nil {
		w.in.newDecoder(f)
	}
}

// newDecoder gives f a fresh decoder. A constructor that fails leaves the
// file without one, and its lines are collected raw rather than lost.
func (in *Input) newDecoder(f *tracked) {
	d, err := in.hooks.newDecoder(f.tagPath)
	if err != nil {
		in.log.Error("line decoder could not be made; collecting the file's lines as they are", "path", f.tagPath, "error", err)
		d = nil
	}
	f.decoder = d
}

// firstSight opens a file that discovery could not open (no descriptor to
// spare then) and decides where reading starts.
func (w *worker) firstSight(f *tracked) bool {
	in := w.in
	in.mu.Lock()
	path, fd := f.path, f.fd
	in.mu.Unlock()
	if fd == nil {
		if path == "" || in.open.Load() >= int64(in.cfg.MaxOpenFiles) {
			return false
		}
		var err error
		if fd, err = os.Open(path); err != nil {
			return false
		}
		var st unix.Stat_t
		if unix.Fstat(int(fd.Fd()), &st) != nil || fileID(&st) != f.id {
			_ = fd.Close()
			return false
		}
		in.mu.Lock()
		in.setFD(f, fd)
		in.mu.Unlock()
	}
	in.begin(f, w.sigBuf)
	return true
}

// begin decides where reading f starts — at its checkpoint, or by the rules
// for a file without one — records that in the checkpoint store and sets up
// f's reader state. f.fd (or f.z) is open and the caller owns f: it is being
// discovered or adopted and not yet queued, or a worker holds it. sigBuf
// holds SignatureMax bytes.
func (in *Input) begin(f *tracked, sigBuf []byte) {
	var size int64
	var prefix []byte
	if f.z != nil {
		size = math.MaxInt64
		n, _ := f.z.ReadAt(sigBuf[:checkpoint.SignatureMax], 0)
		prefix = sigBuf[:n]
	} else {
		var st unix.Stat_t
		if unix.Fstat(int(f.fd.Fd()), &st) == nil {
			size = st.Size
			f.mtime = st.Mtim.Nano()
		}
		n, _ := f.fd.ReadAt(sigBuf[:min(size, int64(checkpoint.SignatureMax))], 0)
		prefix = sigBuf[:n]
	}
	f.sig = checkpoint.Sign(prefix)

	in.mu.Lock()
	p := f.path // what its entry records (see below)
	if p == "" {
		p = f.tagPath
	}
	in.mu.Unlock()
	start, how := int64(0), "start"
	switch {
	case f.resume >= 0:
		start, how = min(f.resume, size), "checkpoint (rotated file)"
		if e, ok := in.staleEntry(f.id); ok && e.Done && !e.Sig.Matches(prefix) {
			// A rotated file adopted under the inode of a file read to its
			// end and gone: keep that file's tombstone by content, or a
			// compressed copy of it found later (kubelet's
			// 0.log.<time>.gz) would be read again.
			in.keepTombstone(e)
		}
	default:
		if e, ok := in.store.Find(in.cfg.Name, f.id, p, in.cfg.IgnoreDevice, func(s checkpoint.Signature) bool { return s.Matches(prefix) }); ok {
			start, how = e.Offset, "checkpoint"
			if start > size {
				start, how = 0, "start (truncated since checkpoint)"
			}
			if e.File != f.id {
				in.store.Delete(in.cfg.Name, e.File) // the device id changed (volume mounted again, or IgnoreDevice)
				in.log.Info("file known by its checkpoint under another device id (its volume was mounted again, e.g. the pod moved to another node): resuming it",
					"path", p, "checkpoint_path", e.Path, "checkpoint_device", e.File.Dev, "device", f.id.Dev, "inode", f.id.Inode, "offset", start)
			}
			break
		}
		if e, ok := in.store.Find(in.cfg.Name, contentID(f.sig), "", false, func(s checkpoint.Signature) bool { return s == f.sig }); ok && f.sig.Size > 0 {
			// A file read to its end earlier, under another inode key (its
			// inode was reused meanwhile): this is its content again.
			start, how = min(e.Offset, size), "checkpoint (by content)"
			in.store.Delete(in.cfg.Name, e.File)
			break
		}
		if e, ok := in.staleEntry(f.id); ok && e.Done {
			// The inode of a file read to its end and gone: a new file.
			in.keepTombstone(e)
		} else if ok {
			// Same file, other content: truncated (copytruncate) or
			// rewritten while the agent was down. All of it is new; the
			// rest of the old content may be in a copy.
			in.adoptCopy(f.tagPath, e.Sig, e.Offset)
			how = "start (truncated since checkpoint)"
			break
		}
		if !in.firstStart || !f.initial {
			// Appeared after the config first started: all of it is new —
			// unless it is a copy of content the input knows, which the
			// reader decides before reading it (judgeCopy).
			f.judge = f.z == nil
			f.judgeSince = time.Now()
			break
		}
		// Present at the config's very first start: Logtail's rules for
		// existing files. Only what the file held when discovery first saw
		// it is old: bytes appended before a reader got to it are new.
		tail := int64(in.cfg.TailSizeKB) << 10
		seen := size
		if f.found >= 0 && f.found < size {
			seen = f.found
		}
		if !in.cfg.TailExisted && time.Since(time.Unix(0, f.mtime)) > recentlyModified {
			start, how = seen, "end (existing file, tailExisted false)"
			in.m.skippedBytes.WithLabelValues("existing").Add(float64(seen))
			in.log.Info("file existed before the config first started and was not modified for two minutes: reading from its end (tailExisted false)",
				"path", f.tagPath, "skipped_bytes", seen)
		} else if seen > tail {
			start, how = nextLineStart(f.fd, seen-tail, size), "tail"
			in.m.skippedBytes.WithLabelValues("tail").Add(float64(start))
			in.log.Info("file existed before the config first started: reading its last tail_size_kb",
				"path", f.tagPath, "skipped_bytes", start, "tail_size_kb", in.cfg.TailSizeKB)
		}
	}
	in.log.Debug("file found", "path", f.tagPath, "size", size, "start", start, "from", how)
	f.readOff.Store(start)
	f.readEnd.Store(start)
	f.pathTag = f.tagPath
	if in.hooks.pathTag != nil {
		f.pathTag = in.hooks.pathTag(f.tagPath)
	}
	f.topic, f.tags = in.topic.forPath(f.pathTag)
	if in.topic.re != nil && !in.topic.re.MatchString(f.pathTag) && in.topicWarned.CompareAndSwap(false, true) {
		// Once per input: the status shows the running count (TopicWarning).
		in.log.Warn("topicFormat path regex does not match a collected file: its logs get no topic and no path tags (see `sluice-agent status`)",
			"path", f.pathTag, "topic_format", in.cfg.TopicFormat)
	}
	if in.newSplitter != nil {
		f.splitter, _ = in.newSplitter()
		f.splitter.Start(start)
	}
	if in.hooks.newDecoder != nil {
		in.newDecoder(f)
	}
	in.mu.Lock()
	p = f.path // again: it may have been rotated away meanwhile
	if p == "" {
		p = f.tagPath
	}
	in.mu.Unlock()
	entrySize := size
	if f.z != nil {
		entrySize = start // unknown until read to the end
	}
	f.win.start(checkpoint.Entry{Config: in.cfg.Name, Path: p, File: f.id, Sig: f.sig, Size: entrySize}, start, in.store.Put)
	f.init = true
}

// nextLineStart returns the first line start at or after pos.
func nextLineStart(fd *os.File, pos, size int64) int64 {
	if pos <= 0 {
		return 0
	}
	var buf [4096]byte
	for at := pos - 1; at < size; {
		n, err := fd.ReadAt(buf[:], at)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return at + int64(i) + 1
		}
		at += int64(n)
		if err != nil || n == 0 {
			break
		}
	}
	return size
}

// readLoop reads from the file's offset to its end (or the job budget),
// handing complete lines on. It returns the bytes of an unterminated last
// line, which stay unread until more arrives or the flush timeout.
func (w *worker) readLoop(f *tracked) int {
	in := w.in
	buf := w.buf
	off := f.readOff.Load()
	n := 0
	budget := jobBudget
	src := f.src()
	for !w.stop {
		m, err := src.ReadAt(buf[n:], off+int64(n))
		if err != nil && !errors.Is(err, io.EOF) {
			in.log.Error("read failed", "path", f.tagPath, "offset", off+int64(n), "error", err)
		}
		if m == 0 {
			break
		}
		if !w.sameContent(f) {
			// Truncated and rewritten (copytruncate) while this read
			// waited, perhaps on back-pressure: the bytes just read may be
			// new content at an old offset. Dropped; the next look sees
			// the change and reads the rest of the old content from the
			// copy.
			f.more = true
			break
		}
		w.setTime()
		n += m
		w.nBytes += m
		budget -= m
		start := 0
		for !w.stop {
			i := bytes.IndexByte(buf[start:n], '\n')
			if i < 0 {
				break
			}
			line := buf[start : start+i]
			if i > 0 && line[i-1] == '\r' {
				line = line[:i-1]
			}
			start += i + 1
			w.line(f, line, off+int64(start))
		}
		if w.stop {
			break
		}
		if start == 0 && n == len(buf) {
			// Longer than max_read_buffer_size: cut it here (at a character
			// boundary for UTF-8) and count it.
			cut := utf8Cut(buf[:n])
			if in.gbk {
				cut = gbkCut(buf[:n])
			}
			w.nSplit++
			w.line(f, buf[:cut], off+int64(cut))
			start = cut
		}
		n = copy(buf, buf[start:n])
		off += int64(start)
		f.readOff.Store(off)
		f.readEnd.Store(off + int64(n))
		if budget <= 0 {
			f.more = true
			break
		}
	}
	return n
}

// utf8Cut returns where to cut b so that no UTF-8 sequence is split; b
// unchanged when its end is not inside a valid sequence.
func utf8Cut(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) && i > 0 {
				return i
			}
			return len(b)
		}
	}
	return len(b)
}

// gbkCut returns where to cut b so that no two-byte GBK character is split.
func gbkCut(b []byte) int {
	i := 0
	for i < len(b) {
		if b[i] < 0x80 {
			i++
			continue
		}
		if i+2 > len(b) {
			return i
		}
		i += 2
	}
	return i
}

func (w *worker) setTime() {
	now := time.Now()
	w.sec, w.nsec = uint32(now.Unix()), uint32(now.Nanosecond())
}

// flushTail hands on an unterminated last line and the splitter's pending
// event: the file has been idle for the flush timeout.
func (w *worker) flushTail(f *tracked, leftover int) {
	w.setTime()
	if leftover > 0 {
		off := f.readOff.Load()
		w.line(f, w.buf[:leftover], off+int64(leftover))
		f.readOff.Store(off + int64(leftover))
		f.readEnd.Store(off + int64(leftover))
		f.afterPartial = true
	}
	if f.splitter != nil && !w.stop {
		f.splitter.Flush(w.emitFn)
	}
	if f.decoder != nil && !w.stop {
		f.decoder.Flush(w.eventFn)
	}
}

// line decodes and repairs one line and passes it to the splitter.
func (w *worker) line(f *tracked, line []byte, end int64) {
	w.nLines++
	if w.gbk != nil {
		line = w.decodeGBK(line)
	}
	if w.in.cfg.DiscardNonUTF8 && !utf8.Valid(line) {
		line = w.repairUTF8(line)
	}
	switch {
	case f.decoder != nil:
		f.decoder.Push(line, end, w.eventFn)
	case f.splitter != nil:
		f.splitter.Push(line, end, w.emitFn)
	default:
		w.emit(line, end)
	}
}

// emitEvent adds one decoded event to the batch, like emit.
func (w *worker) emitEvent(ev Event) {
	if w.stop {
		return
	}
	b := w.batch
	sec, nsec := ev.Sec, ev.Nsec
	if sec == 0 && nsec == 0 {
		sec, nsec = w.sec, w.nsec
	}
	b.BeginEvent(sec, nsec)
	b.AddField(contentKey, ev.Content)
	for _, fl := range ev.Fields {
		b.AddField(fl.Key, fl.Value)
	}
	b.EndEvent()
	w.end = ev.End
	if b.Len() >= w.in.cfg.MaxBatchEvents || b.Size() >= w.in.cfg.MaxBatchBytes {
		if err := w.send(w.cur); err != nil {
			w.stop = true
		}
	}
}

func (w *worker) decodeGBK(line []byte) []byte {
	if cap(w.dec) < 2*len(line)+16 {
		w.dec = make([]byte, 2*len(line)+16)
	}
	for {
		w.gbk.Reset()
		dst := w.dec[:cap(w.dec)]
		nDst, _, err := w.gbk.Transform(dst, line, true)
		if errors.Is(err, transform.ErrShortDst) {
			w.dec = make([]byte, 2*cap(w.dec))
			continue
		}
		if bytes.Contains(dst[:nDst], []byte("\uFFFD")) {
			w.nBadUTF++ // undecodable GBK became U+FFFD
		}
		return dst[:nDst]
	}
}

// repairUTF8 replaces each byte that is not part of a valid UTF-8 sequence
// with a space, as Logtail's discardNonUtf8 does.
func (w *worker) repairUTF8(line []byte) []byte {
	w.nBadUTF++
	out := make([]byte, 0, len(line))
	if w.gbk == nil && cap(w.dec) >= len(line) {
		out = w.dec[:0]
	}
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRune(line[i:])
		if r == utf8.RuneError && size <= 1 {
			out = append(out, ' ')
			i++
			continue
		}
		out = append(out, line[i:i+size]...)
		i += size
	}
	if w.gbk == nil {
		w.dec = out
	}
	return out
}

// emit adds one event to the batch and sends the batch when full.
func (w *worker) emit(event []byte, end int64) {
	if w.stop {
		return
	}
	b := w.batch
	b.BeginEvent(w.sec, w.nsec)
	b.AddField(contentKey, event)
	b.EndEvent()
	w.end = end
	if b.Len() >= w.in.cfg.MaxBatchEvents || b.Size() >= w.in.cfg.MaxBatchBytes {
		if err := w.send(w.cur); err != nil {
			w.stop = true
		}
	}
}

// send hands the batch on once the file's window has room: blocking here
// (window full, or Consume applying back-pressure) pauses reading, and the
// unread data waits in the file.
func (w *worker) send(f *tracked) error {
	b := w.batch
	if b.Len() == 0 {
		return nil
	}
	in := w.in
	var ack *batchAck
	for {
		a, ok, failed := f.win.reserve(f, w.end, in.cfg.MaxInflightBatches)
		if failed {
			b.Reset()
			return errRewind
		}
		if ok {
			ack = a
			break
		}
		select {
		case <-f.win.wake:
		case <-w.ctx.Done():
			b.Reset()
			return w.ctx.Err()
		}
	}
	b.Topic = f.topic
	b.AddTag("__path__", f.pathTag)
	for _, t := range f.tags {
		b.AddTag(t[0], t[1])
	}
	if in.hooks.tags != nil {
		in.hooks.tags(f.tagPath, b.AddTag)
	}
	b.Ack = ack
	in.inflight.Add(1)
	err := in.next.Consume(w.ctx, b)
	b.Reset()
	if err != nil {
		// Not taken: no ack will come. Fail the window so the file is read
		// again from its committed offset.
		in.ackDone()
		f.win.refused(ack.epoch)
		if w.ctx.Err() == nil {
			in.m.batchFailures.Inc()
			in.log.Warn("next stage refused a batch; the file is read again from its last acknowledged offset", "path", f.tagPath, "error", err)
		}
		return err
	}
	return nil
}
