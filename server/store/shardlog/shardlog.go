// Package shardlog keeps, for every shard of every logstore, the log
// groups it received, in order: the Log Service's shard, which PullLogs,
// cursors and consumer groups read. A cursor is a group's position in its
// shard (0, 1, 2, ...; one per group, as the Log Service's cursors are
// consecutive integers), so GetCursor, PullLogs and checkpoints are
// arithmetic on positions.
//
// # Layout
//
// A shard is a directory Dir/ls<logstore>/<shard>/ of files named after
// the cursor of their first group (16 hex digits). Each file is a
// sequence of records, one per write: the bytes the store's WAL wrote for
// it (see record.go; the groups as LogGroupList entries, so a PullLogs
// response is those entries concatenated, never re-encoded), plus a
// trailer with the WAL position after the record and its group count. A
// shard appends to its last file and starts a new one past FileBytes or
// FileAge; retention removes whole files whose every record is older than
// the TTL (by receive time, as the Log Service), never a shard's last, so
// cursors continue. The last file's record index (offset and first cursor
// per record, 8 bytes per write) is in memory; other files' indexes are
// rebuilt from their headers when read and kept in a small LRU.
//
// # Durability
//
// The logs are derived from the store's WAL, which stays the one source
// of truth: the WAL flusher appends each durable batch here (one
// write(2) per shard, no fsync) before acknowledging it, so an
// acknowledged write is readable at once and survives a crash of the
// process. Before the store records a WAL position as loaded (after which
// it may delete the WAL below it) it calls Sync, which fsyncs every file
// written since. At Open, Recover cuts each shard back to the records at
// or below that position (torn or unsynced records after it included) and
// the store replays its WAL from there: the replay appends the same
// records in the same order, so the cursors a consumer held before a
// crash read the same groups after it.
package shardlog

import (
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
)

const (
	maxShard  = 1 << 16
	maxRecord = 1 << 30
	fileExt   = ".log"
)

// Sentinel errors; check with errors.Is.
var (
	// ErrOutOfRange: a cursor before the shard's first retained group
	// (expired) or after its end.
	ErrOutOfRange = errors.New("cursor out of range")
	// ErrCorrupt: a record failed its checksum when read.
	ErrCorrupt = errors.New("shard log record corrupt")
)

// Config configures a Log.
type Config struct {
	// Dir holds the logs: Dir/ls<logstore>/<shard>/<first cursor>.log.
	Dir string
	// FileBytes: a shard starts a new file once its current one is this
	// large (default 32 MiB). Retention removes whole files.
	FileBytes int64
	// FileAge: a shard starts a new file once the first record of its
	// current one is this old (default 1h), so retention, which removes
	// whole files, keeps at most about this much beyond the TTL.
	FileAge time.Duration
	// IndexCache is how many files no longer written keep their record
	// index in memory (default 256); others rebuild it on their next read.
	IndexCache int
	// Now returns the current time; nil = time.Now.
	Now func() time.Time
}

// Settings carries the logger and metrics registerer.
type Settings struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
}

// Key names one shard of one logstore (the embedded store's logstore id).
type Key struct {
	Logstore int64
	Shard    int
}

// Log is the set of shard logs under one directory. Append is called by
// one goroutine at a time (the store's WAL flusher); reads run
// concurrently with it and with each other.
type Log struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	mu        sync.Mutex // shards, dropped, unsynced, dirtyDirs, err
	shards    map[Key]*shard
	dropped   map[int64]bool
	unsynced  []*os.File // files no longer appended to, not yet fsynced (Sync closes them)
	dirtyDirs map[string]bool
	err       error // sticky: an append failed, the files may hold a partial record

	appendMu sync.Mutex
	buf      []byte

	syncMu sync.Mutex // serialises Sync, Retain, Drop and Close

	cache indexCache
}

// shard is one shard's files, oldest first; the last is appended to.
type shard struct {
	key Key
	dir string

	mu    sync.RWMutex
	files []*file
	next  int64    // cursor after the last group
	w     *os.File // the last file, open for writing (nil until the first append)
	dirty bool     // w has data not yet fsynced
}

type file struct {
	first     int64 // cursor of its first group
	firstRecv int64 // receive time (unix ns) of its first record
	firstWAL  int64 // walEnd of its first record (Recover)
	path      string

	// size and idx of the file being appended to change under the
	// shard's lock; once sealed, idx is loaded and evicted under idxMu.
	size   int64
	sealed bool
	idxMu  sync.Mutex
	idx    []entry // per record; nil: not loaded
	elem   *list.Element
}

// entry locates one record: its offset and the cursor of its first group
// relative to the file's first.
type entry struct {
	off uint32
	rel uint32
}

// Open opens the logs under cfg.Dir, creating the directory. Call
// Recover before appending.
func Open(cfg Config, set Settings) (*Log, error) {
	if cfg.Dir == "" {
		return nil, errors.New("shard log: Dir is empty")
	}
	if cfg.FileBytes <= 0 {
		cfg.FileBytes = 32 << 20
	}
	if cfg.FileAge <= 0 {
		cfg.FileAge = time.Hour
	}
	if cfg.IndexCache <= 0 {
		cfg.IndexCache = 256
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(set.Registerer)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("shard log: create %s: %w", cfg.Dir, err)
	}
	l := &Log{cfg: cfg, log: set.Logger, m: m, shards: map[Key]*shard{}, dropped: map[int64]bool{}, dirtyDirs: map[string]bool{}}
	l.cache.init(cfg.IndexCache)
	if err := l.scan(); err != nil {
		return nil, err
	}
	return l, nil
}

// scan finds every shard's files and reads the first record of each.
func (l *Log) scan() error {
	lsDirs, err := os.ReadDir(l.cfg.Dir)
	if err != nil {
		return fmt.Errorf("shard log: list %s: %w", l.cfg.Dir, err)
	}
	for _, ld := range lsDirs {
		id, ok := strings.CutPrefix(ld.Name(), "ls")
		lsID, err := strconv.ParseInt(id, 10, 64)
		if !ok || err != nil || !ld.IsDir() {
			continue
		}
		shardDirs, err := os.ReadDir(filepath.Join(l.cfg.Dir, ld.Name()))
		if err != nil {
			return fmt.Errorf("shard log: %w", err)
		}
		for _, sd := range shardDirs {
			n, err := strconv.Atoi(sd.Name())
			if err != nil || n < 0 || n >= maxShard || !sd.IsDir() {
				continue
			}
			s := &shard{key: Key{lsID, n}, dir: filepath.Join(l.cfg.Dir, ld.Name(), sd.Name())}
			if err := s.scan(); err != nil {
				return err
			}
			if len(s.files) > 0 {
				l.shards[s.key] = s
			}
		}
	}
	return nil
}

func (s *shard) scan() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("shard log: %w", err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), fileExt)
		if !ok || e.IsDir() {
			continue
		}
		first, err := strconv.ParseInt(name, 16, 64)
		if err != nil || first < 0 {
			continue
		}
		f := &file{first: first, path: filepath.Join(s.dir, e.Name()), firstWAL: -1, sealed: true}
		if err := f.readFirst(); err != nil {
			return err
		}
		s.files = append(s.files, f)
	}
	slices.SortFunc(s.files, func(a, b *file) int { return cmpInt(a.first, b.first) })
	return nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readFirst reads the file's size and its first record's receive time and
// WAL position (firstWAL stays -1 when the file has no intact record).
func (f *file) readFirst() error {
	fh, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("shard log: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("shard log: %w", err)
	}
	f.size = st.Size()
	var h [HeaderSize + 32]byte
	n, _ := fh.ReadAt(h[:], 0)
	if n < HeaderSize {
		return nil
	}
	plen := int64(binary.LittleEndian.Uint32(h[:]))
	if plen > maxRecord || HeaderSize+plen+trailerSize > f.size {
		return nil
	}
	var t [trailerSize]byte
	if _, err := fh.ReadAt(t[:], HeaderSize+plen); err != nil {
		return nil
	}
	if !trailerOK(binary.LittleEndian.Uint32(h[4:]), t[:]) {
		return nil
	}
	p, err := ParsePayload(h[HeaderSize:min(int64(n), HeaderSize+plen)])
	if err != nil {
		return nil
	}
	f.firstRecv = p.Received
	f.firstWAL = int64(binary.LittleEndian.Uint64(t[:]))
	return nil
}

// Recover cuts every shard back to the records whose WAL position is at
// most loaded: the position up to which the store has made everything
// durable (segments and these logs, see Sync) and after which it replays
// its WAL. Files and tails past it (and torn records a crash left) are
// removed; the store's replay appends those writes again, in WAL order,
// so they get the same cursors. Recover must run before the first Append.
func (l *Log) Recover(loaded int64) error {
	for k, s := range l.shards {
		files, bytes, err := s.recover(loaded)
		if err != nil {
			return err
		}
		if files > 0 || bytes > 0 {
			l.log.Info("shard log: cut back to the store's durable WAL position; the WAL replay appends the rest again",
				"logstore", k.Logstore, "shard", k.Shard, "files_removed", files, "bytes_cut", bytes, "wal_position", loaded)
		}
	}
	return nil
}

func (s *shard) recover(loaded int64) (filesRemoved int, bytesCut int64, err error) {
	j := -1
	for i, f := range s.files {
		if f.firstWAL < 0 || f.firstWAL > loaded {
			break
		}
		j = i
	}
	if j < 0 {
		if len(s.files) > 0 {
			s.next = s.files[0].first
		}
	}
	for _, f := range s.files[j+1:] {
		if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, 0, fmt.Errorf("shard log: %w", err)
		}
		filesRemoved++
		bytesCut += f.size
	}
	s.files = s.files[:j+1]
	if j < 0 {
		return filesRemoved, bytesCut, nil
	}
	f := s.files[j]
	data, err := os.ReadFile(f.path)
	if err != nil {
		return 0, 0, fmt.Errorf("shard log: %w", err)
	}
	var (
		off int
		rel int64
		idx []entry
	)
	for off < len(data) {
		fr, ok := parseFrame(data[off:], false)
		if !ok || fr.walEnd > loaded {
			break
		}
		idx = append(idx, entry{uint32(off), uint32(rel)})
		rel += int64(fr.groups)
		off += int(fr.size)
	}
	if off < len(data) {
		if err := os.Truncate(f.path, int64(off)); err != nil {
			return 0, 0, fmt.Errorf("shard log: truncate %s: %w", f.path, err)
		}
		bytesCut += int64(len(data) - off)
	}
	f.size, f.idx, f.sealed = int64(off), idx, false
	s.next = f.first + rel
	return filesRemoved, bytesCut, nil
}

// Entry is one record to append: a write's groups for one shard.
type Entry struct {
	Key    Key
	Record []byte // framed by AppendRecord (the WAL's bytes)
	Groups int    // LogGroupList entries in Record
	WALEnd int64  // WAL position after the record
	// First is set by Append: the cursor of the record's first group
	// (-1 when its logstore was dropped).
	First int64
}

// Append appends each entry to its shard (entries of a shard in order,
// one write(2) per shard). The data is readable when Append returns and
// survives a crash of the process; Sync makes it survive a power loss.
// A failed append is sticky: every later one fails (a file may hold part
// of a record), and the store's WAL recovery rebuilds the logs at the
// next start. Not safe for concurrent use with itself.
func (l *Log) Append(entries []Entry) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return err
	}
	var order []*shard
	byShard := map[*shard][]*Entry{}
	for i := range entries {
		e := &entries[i]
		e.First = -1
		if l.dropped[e.Key.Logstore] {
			continue
		}
		s := l.shards[e.Key]
		if s == nil {
			s = &shard{key: e.Key, dir: l.shardDir(e.Key)}
			l.shards[e.Key] = s
		}
		if _, ok := byShard[s]; !ok {
			order = append(order, s)
		}
		byShard[s] = append(byShard[s], e)
	}
	l.mu.Unlock()
	for _, s := range order {
		if err := l.appendShard(s, byShard[s]); err != nil {
			l.mu.Lock()
			l.err = fmt.Errorf("shard log: %w", err)
			err = l.err
			l.mu.Unlock()
			return err
		}
	}
	return nil
}

func (l *Log) shardDir(k Key) string {
	return filepath.Join(l.cfg.Dir, "ls"+strconv.FormatInt(k.Logstore, 10), strconv.Itoa(k.Shard))
}

func (l *Log) appendShard(s *shard, es []*Entry) error {
	var size int64
	for _, e := range es {
		if len(e.Record) < HeaderSize {
			return errors.New("append: record shorter than its header")
		}
		size += int64(len(e.Record)) + trailerSize
	}
	p, err := ParsePayload(es[0].Record[HeaderSize:])
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	recv := p.Received
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur *file
	if n := len(s.files); n > 0 {
		cur = s.files[n-1]
	}
	if cur != nil && cur.size > 0 && (cur.size+size > l.cfg.FileBytes || recv-cur.firstRecv > int64(l.cfg.FileAge)) {
		l.seal(s, cur)
		cur = nil
	}
	if cur == nil {
		if cur, err = l.create(s, recv, es[0].WALEnd); err != nil {
			return err
		}
	} else if s.w == nil {
		if s.w, err = os.OpenFile(cur.path, os.O_WRONLY, 0); err != nil {
			return err
		}
	}
	buf := l.buf[:0]
	idx := cur.idx
	rel := s.next - cur.first
	for _, e := range es {
		idx = append(idx, entry{uint32(cur.size + int64(len(buf))), uint32(rel)})
		buf = append(buf, e.Record...)
		buf = appendTrailer(buf, binary.LittleEndian.Uint32(e.Record[4:]), e.WALEnd, e.Groups)
		e.First = cur.first + rel
		rel += int64(e.Groups)
	}
	l.buf = buf
	if cap(l.buf) > 16<<20 {
		l.buf = nil // do not pin a huge batch's buffer
	}
	if _, err := s.w.WriteAt(buf, cur.size); err != nil {
		return err
	}
	cur.size += int64(len(buf))
	cur.idx = idx
	s.next = cur.first + rel
	s.dirty = true
	l.m.bytesWritten.Add(float64(len(buf)))
	return nil
}

// seal stops appending to cur: Sync fsyncs and closes it, its index
// moves to the cache.
func (l *Log) seal(s *shard, cur *file) {
	cur.idxMu.Lock()
	cur.sealed = true
	cur.idxMu.Unlock()
	if s.w != nil {
		l.mu.Lock()
		l.unsynced = append(l.unsynced, s.w)
		l.mu.Unlock()
		s.w = nil
	}
	s.dirty = false
	l.evict(l.cache.touch(cur))
}

// create starts a new file at the shard's next cursor.
func (l *Log) create(s *shard, recv, walEnd int64) (*file, error) {
	if len(s.files) == 0 {
		if err := os.MkdirAll(s.dir, 0o750); err != nil {
			return nil, err
		}
		l.mu.Lock()
		l.dirtyDirs[filepath.Dir(s.dir)] = true
		l.dirtyDirs[filepath.Dir(filepath.Dir(s.dir))] = true
		l.mu.Unlock()
	}
	f := &file{first: s.next, firstRecv: recv, firstWAL: walEnd, path: filepath.Join(s.dir, fmt.Sprintf("%016x%s", s.next, fileExt))}
	w, err := os.OpenFile(f.path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.dirtyDirs[s.dir] = true
	l.mu.Unlock()
	s.w = w
	s.files = append(s.files, f)
	return f, nil
}

// Sync fsyncs everything appended so far (and the directories of new
// files). The store calls it before it records a WAL position as loaded,
// so Recover never needs the WAL below that position.
func (l *Log) Sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.syncLocked()
}

func (l *Log) syncLocked() error {
	start := time.Now()
	l.mu.Lock()
	sealed := l.unsynced
	l.unsynced = nil
	dirs := l.dirtyDirs
	l.dirtyDirs = map[string]bool{}
	shards := make([]*shard, 0, len(l.shards))
	for _, s := range l.shards {
		shards = append(shards, s)
	}
	l.mu.Unlock()
	var errs []error
	for _, f := range sealed {
		if err := f.Sync(); err != nil {
			errs = append(errs, err)
		}
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	synced := 0
	for _, s := range shards {
		s.mu.Lock()
		w, dirty := s.w, s.dirty
		s.dirty = false
		s.mu.Unlock()
		if !dirty || w == nil {
			continue
		}
		// w stays open: only seal (which hands it to the next Sync) and
		// Drop/Close (which hold syncMu) retire it.
		if err := w.Sync(); err != nil {
			s.mu.Lock()
			s.dirty = true
			s.mu.Unlock()
			errs = append(errs, err)
		}
		synced++
	}
	for d := range dirs {
		if err := fsutil.SyncDir(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(sealed)+synced+len(dirs) > 0 {
		l.m.syncSeconds.Observe(time.Since(start).Seconds())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shard log: sync: %w", err)
	}
	return nil
}

func (l *Log) shard(k Key) *shard {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.shards[k]
}

// Bounds returns the cursor of the shard's first retained group (begin)
// and the cursor after its last (end). A shard never written has 0, 0.
func (l *Log) Bounds(k Key) (begin, end int64) {
	s := l.shard(k)
	if s == nil {
		return 0, 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.begin(), s.next
}

func (s *shard) begin() int64 {
	if len(s.files) == 0 {
		return s.next
	}
	return s.files[0].first
}

// Batch is the result of a Read.
type Batch struct {
	// Data is the groups read as a LogGroupList protobuf (dst of Read,
	// appended to).
	Data   []byte
	Groups int
	Next   int64 // cursor after the last group read
}

// fileView is what a read needs of one file, taken under the shard lock.
type fileView struct {
	f    *file
	idx  []entry // the file appended to: a snapshot; others: nil (loaded on demand)
	size int64
}

func (s *shard) views(from, end int64) []fileView {
	i, _ := slices.BinarySearchFunc(s.files, from, func(f *file, c int64) int { return cmpInt(f.first, c) })
	if i == len(s.files) || s.files[i].first > from {
		i--
	}
	var out []fileView
	for ; i >= 0 && i < len(s.files) && s.files[i].first < end; i++ {
		f := s.files[i]
		v := fileView{f: f}
		if i == len(s.files)-1 {
			v.idx, v.size = f.idx[:len(f.idx):len(f.idx)], f.size
		}
		out = append(out, v)
	}
	return out
}

// Read appends to dst the groups from cursor from up to (not including)
// end (end < 0: the shard's end), at most maxGroups of them and, past the
// first, no more than maxBytes of data. Data is a LogGroupList protobuf.
// ErrOutOfRange when from is before the first retained group or after
// the end.
func (l *Log) Read(k Key, from, end int64, maxGroups, maxBytes int, dst []byte) (Batch, error) {
	out := Batch{Data: dst, Next: from}
	s := l.shard(k)
	if s == nil {
		if from == 0 {
			return out, nil
		}
		return out, fmt.Errorf("cursor %d of an empty shard (begin and end are 0): %w", from, ErrOutOfRange)
	}
	s.mu.RLock()
	begin, next := s.begin(), s.next
	if from < begin || from > next {
		s.mu.RUnlock()
		return out, fmt.Errorf("cursor %d is outside the shard's [%d, %d]: %w", from, begin, next, ErrOutOfRange)
	}
	if end < 0 || end > next {
		end = next
	}
	if from >= end || maxGroups <= 0 {
		s.mu.RUnlock()
		return out, nil
	}
	views := s.views(from, end)
	s.mu.RUnlock()
	for _, v := range views {
		done, err := l.readFile(v, &out, end, maxGroups, maxBytes)
		if err != nil {
			return out, err
		}
		if done {
			break
		}
	}
	return out, nil
}

// readFile reads out.Next onward from one file; done when a limit stopped it.
func (l *Log) readFile(v fileView, out *Batch, end int64, maxGroups, maxBytes int) (done bool, err error) {
	idx, size := v.idx, v.size
	if idx == nil {
		if idx, size, err = l.index(v.f); err != nil {
			return true, err
		}
	}
	f := v.f
	rel := out.Next - f.first
	ri := max(0, recordOf(idx, rel))
	// Records to read: up to the limits, estimated from their sizes.
	var bytes int64
	rj := ri
	for rj < len(idx) && f.first+int64(idx[rj].rel) < end {
		if rj > ri && (int(bytes) >= maxBytes || int64(idx[rj].rel)-rel >= int64(maxGroups-out.Groups)) {
			break
		}
		stop := size
		if rj+1 < len(idx) {
			stop = int64(idx[rj+1].off)
		}
		bytes += stop - int64(idx[rj].off)
		rj++
	}
	if rj == ri {
		return false, nil
	}
	stop := size
	if rj < len(idx) {
		stop = int64(idx[rj].off)
	}
	buf := make([]byte, stop-int64(idx[ri].off))
	fh, err := os.Open(f.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return true, fmt.Errorf("cursor %d expired while reading: %w", out.Next, ErrOutOfRange)
		}
		return true, err
	}
	_, err = fh.ReadAt(buf, int64(idx[ri].off))
	fh.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return true, err
	}
	off := 0
	for r := ri; r < rj; r++ {
		fr, ok := parseFrame(buf[off:], true)
		if !ok {
			l.m.corrupt.Inc()
			return true, fmt.Errorf("%s at offset %d: %w", f.path, int64(idx[r].off), ErrCorrupt)
		}
		p, err := ParsePayload(buf[off+HeaderSize : off+int(fr.size)-trailerSize])
		if err != nil {
			return true, fmt.Errorf("%s at offset %d: %w", f.path, int64(idx[r].off), ErrCorrupt)
		}
		off += int(fr.size)
		g := p.Groups
		for c := f.first + int64(idx[r].rel); len(g) > 0; c++ {
			var e []byte
			if e, g, err = nextEntry(g); err != nil {
				return true, fmt.Errorf("%s at offset %d: %w", f.path, int64(idx[r].off), ErrCorrupt)
			}
			if c < out.Next {
				continue
			}
			if c >= end || out.Groups >= maxGroups || out.Groups > 0 && len(out.Data)+len(e) > maxBytes {
				return true, nil
			}
			out.Data = append(out.Data, e...)
			out.Groups++
			out.Next = c + 1
		}
	}
	return out.Next >= end || out.Groups >= maxGroups, nil
}

// recordOf returns the index of the last record whose first group is at or
// before rel (-1 if none).
func recordOf(idx []entry, rel int64) int {
	i, found := slices.BinarySearchFunc(idx, rel, func(e entry, r int64) int { return cmpInt(int64(e.rel), r) })
	if found {
		return i
	}
	return i - 1
}

// index returns a sealed file's record index, loading it if evicted.
func (l *Log) index(f *file) ([]entry, int64, error) {
	f.idxMu.Lock()
	idx, size := f.idx, f.size
	var err error
	if idx == nil {
		idx, size, err = loadIndex(f.path)
		if err == nil {
			f.idx, f.size = idx, size
		}
	}
	f.idxMu.Unlock()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, fmt.Errorf("file %s expired while reading: %w", f.path, ErrOutOfRange)
		}
		return nil, 0, err
	}
	l.evict(l.cache.touch(f))
	return idx, size, nil
}

func loadIndex(path string) ([]entry, int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var (
		idx []entry
		rel int64
		off int
	)
	for off < len(data) {
		fr, ok := parseFrame(data[off:], false)
		if !ok {
			break
		}
		idx = append(idx, entry{uint32(off), uint32(rel)})
		rel += int64(fr.groups)
		off += int(fr.size)
	}
	return idx, int64(off), nil
}

func (l *Log) evict(files []*file) {
	for _, f := range files {
		f.idxMu.Lock()
		if f.sealed {
			f.idx = nil
		}
		f.idxMu.Unlock()
	}
}

// recordAt returns the payload header of the record holding cursor c.
func (l *Log) recordAt(s *shard, c int64) (Payload, error) {
	s.mu.RLock()
	views := s.views(c, c+1)
	s.mu.RUnlock()
	if len(views) == 0 {
		return Payload{}, fmt.Errorf("cursor %d: %w", c, ErrOutOfRange)
	}
	v := views[0]
	idx := v.idx
	if idx == nil {
		var err error
		if idx, _, err = l.index(v.f); err != nil {
			return Payload{}, err
		}
	}
	r := recordOf(idx, c-v.f.first)
	if r < 0 {
		return Payload{}, fmt.Errorf("cursor %d: %w", c, ErrOutOfRange)
	}
	fh, err := os.Open(v.f.path)
	if err != nil {
		return Payload{}, err
	}
	defer fh.Close()
	var h [HeaderSize + 32]byte
	n, err := fh.ReadAt(h[:], int64(idx[r].off))
	if n < HeaderSize+3 {
		return Payload{}, fmt.Errorf("read %s: %w", v.f.path, err)
	}
	plen := int(binary.LittleEndian.Uint32(h[:]))
	return ParsePayload(h[HeaderSize:min(n, HeaderSize+plen)])
}

// ReceiveTime returns when the group at cursor c was received (unix ns);
// for the end cursor, when the last group was.
func (l *Log) ReceiveTime(k Key, c int64) (int64, error) {
	s := l.shard(k)
	if s == nil {
		return 0, fmt.Errorf("cursor %d of an empty shard: %w", c, ErrOutOfRange)
	}
	s.mu.RLock()
	begin, next := s.begin(), s.next
	s.mu.RUnlock()
	if c == next && c > begin {
		c--
	}
	if c < begin || c >= next {
		return 0, fmt.Errorf("cursor %d is outside the shard's [%d, %d): %w", c, begin, next, ErrOutOfRange)
	}
	p, err := l.recordAt(s, c)
	if err != nil {
		return 0, err
	}
	return p.Received, nil
}

// Seek returns the cursor of the first group received at or after t
// (unix ns): begin when t is before it, the end when nothing was
// received since. Receive times follow the append order closely but not
// strictly (concurrent writes), as in the Log Service.
func (l *Log) Seek(k Key, t int64) (int64, error) {
	s := l.shard(k)
	if s == nil {
		return 0, nil
	}
	s.mu.RLock()
	files := slices.Clone(s.files)
	next := s.next
	s.mu.RUnlock()
	if len(files) == 0 || t <= files[0].firstRecv {
		return beginOf(files, next), nil
	}
	i, _ := slices.BinarySearchFunc(files, t, func(f *file, t int64) int { return cmpInt(f.firstRecv, t) })
	i-- // the last file whose first record is before t
	for ; i < len(files); i++ {
		c, found, err := seekFile(files[i], t)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by retention meanwhile
			}
			return 0, err
		}
		if found {
			return c, nil
		}
		if i+1 < len(files) {
			return files[i+1].first, nil
		}
	}
	return next, nil
}

func beginOf(files []*file, next int64) int64 {
	if len(files) == 0 {
		return next
	}
	return files[0].first
}

// seekFile scans a file for the first record received at or after t.
func seekFile(f *file, t int64) (int64, bool, error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return 0, false, err
	}
	rel, off := int64(0), 0
	for off < len(data) {
		fr, ok := parseFrame(data[off:], false)
		if !ok {
			break
		}
		p, err := ParsePayload(data[off+HeaderSize : off+int(fr.size)-trailerSize])
		if err == nil && p.Received >= t {
			return f.first + rel, true, nil
		}
		rel += int64(fr.groups)
		off += int(fr.size)
	}
	return 0, false, nil
}

// Retain removes the files of a logstore's shards whose every record was
// received before cutoff (unix ns); a shard's last file always stays, so
// its cursors continue. It returns the files removed.
func (l *Log) Retain(logstore int64, cutoff int64) (int, error) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	var paths []string
	for _, s := range l.shardsOf(logstore) {
		s.mu.Lock()
		n := 0
		for n+1 < len(s.files) && s.files[n+1].firstRecv <= cutoff {
			n++
		}
		for _, f := range s.files[:n] {
			paths = append(paths, f.path)
			l.cache.remove(f)
		}
		s.files = slices.Delete(s.files, 0, n)
		s.mu.Unlock()
	}
	var errs []error
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	l.m.filesRemoved.Add(float64(len(paths)))
	if err := errors.Join(errs...); err != nil {
		return len(paths), fmt.Errorf("shard log: retention: %w", err)
	}
	return len(paths), nil
}

func (l *Log) shardsOf(logstore int64) []*shard {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*shard
	for k, s := range l.shards {
		if k.Logstore == logstore {
			out = append(out, s)
		}
	}
	return out
}

// Drop deletes a logstore's shard logs; later appends to it are ignored.
func (l *Log) Drop(logstore int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	l.dropped[logstore] = true
	var shards []*shard
	for k, s := range l.shards {
		if k.Logstore == logstore {
			shards = append(shards, s)
			delete(l.shards, k)
		}
	}
	l.mu.Unlock()
	for _, s := range shards {
		s.mu.Lock()
		if s.w != nil {
			_ = s.w.Close()
			s.w = nil
		}
		for _, f := range s.files {
			l.cache.remove(f)
		}
		s.files = nil
		s.mu.Unlock()
	}
	dir := filepath.Join(l.cfg.Dir, "ls"+strconv.FormatInt(logstore, 10))
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("shard log: drop %s: %w", dir, err)
	}
	return nil
}

// Close syncs and closes every file. The Log must not be used after.
func (l *Log) Close() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	err := l.syncLocked()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.shards {
		s.mu.Lock()
		if s.w != nil {
			err = errors.Join(err, s.w.Close())
			s.w = nil
		}
		s.mu.Unlock()
	}
	return err
}

// indexCache keeps the record indexes of the most recently read sealed
// files (LRU).
type indexCache struct {
	mu  sync.Mutex
	cap int
	lru *list.List // of *file, most recent first
}

func (c *indexCache) init(n int) {
	c.cap, c.lru = n, list.New()
}

// touch marks f as used and returns the files evicted to make room.
func (c *indexCache) touch(f *file) []*file {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.elem != nil {
		c.lru.MoveToFront(f.elem)
		return nil
	}
	f.elem = c.lru.PushFront(f)
	var out []*file
	for c.lru.Len() > c.cap {
		e := c.lru.Back()
		g := c.lru.Remove(e).(*file)
		g.elem = nil
		out = append(out, g)
	}
	return out
}

func (c *indexCache) remove(f *file) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.elem != nil {
		c.lru.Remove(f.elem)
		f.elem = nil
	}
}

type metrics struct {
	bytesWritten prometheus.Counter
	syncSeconds  prometheus.Histogram
	filesRemoved prometheus.Counter
	corrupt      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		bytesWritten: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_shard_log_bytes_written_total",
			Help: "Bytes appended to shard logs (the log groups PullLogs and consumer groups read)."}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_store_shard_log_sync_seconds",
			Help: "Time to fsync the shard logs written since the previous load.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		filesRemoved: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_shard_log_files_removed_total",
			Help: "Shard log files removed by retention."}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_shard_log_corrupt_reads_total",
			Help: "Reads that found a shard log record failing its checksum (disk corruption; logged)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.bytesWritten, m.syncSeconds, m.filesRemoved, m.corrupt} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("shard log: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
