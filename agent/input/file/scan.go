package file

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluicelog/sluice/agent/checkpoint"
)

func (in *Input) scanLoop(ctx context.Context) {
	in.initSaved()
	in.scan(true)
	in.reconcile()
	t := time.NewTicker(in.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			in.scan(false)
		}
	}
}

// initSaved remembers the paths that had a checkpoint entry when the input
// started: a file found there without its own entry is the successor of a
// file rotated while the agent was down, so it is read from its start.
func (in *Input) initSaved() {
	in.saved = make(map[string]bool)
	for _, e := range in.store.Entries(in.cfg.Name) {
		in.saved[e.Path] = true
	}
}

// scan is one discovery pass: list the matched directories, stat the
// candidate files, notice new, grown, rotated and vanished files, and queue
// the ones that need reading.
func (in *Input) scan(first bool) {
	now := time.Now()
	prev := in.lastPass
	in.lastPass = now
	in.prevPass = prev
	in.gen++
	if in.hooks.dirs != nil {
		in.dirs = in.hooks.dirs(in.dirs[:0])
	} else {
		in.dirs = in.paths.expand(in.dirs[:0])
	}
	for _, d := range in.dirs {
		if in.dirBlacklisted(d) {
			continue
		}
		in.walk(d, 0, first, now)
	}
	for dir, l := range in.dirCache {
		if l.seen != in.gen {
			delete(in.dirCache, dir)
		}
	}
	for id, g := range in.visited {
		if g != in.gen {
			delete(in.visited, id)
		}
	}
	in.settle(now)
	for _, c := range in.replaced {
		in.adoptRotated(c.path, c.since)
	}
	in.replaced = in.replaced[:0]
	for p, since := range in.pathGone {
		if now.Sub(since) > time.Hour {
			delete(in.pathGone, p)
		}
	}
	in.mu.Lock()
	for id, fin := range in.finished {
		if now.Sub(fin.at) > time.Hour {
			delete(in.finished, id)
		}
	}
	in.mu.Unlock()
}

// finishedFile remembers a file read to its end and dropped, so that a
// rotation check does not mistake it for a missed one.
type finishedFile struct {
	sig checkpoint.Signature
	at  time.Time
}

// rotCheck asks for path's neighbours modified since to be looked at.
type rotCheck struct {
	path  string
	since time.Time
}

// blacklistPath is the path blacklists are written against: the path
// inside the container for files read through the host (dockerFile
// configs: the pathTag hook), else path itself.
func (in *Input) blacklistPath(path string) string {
	if in.hooks.pathTag != nil {
		return in.hooks.pathTag(path)
	}
	return path
}

// dirBlacklisted reports whether dir or one of its ancestors is blacklisted.
func (in *Input) dirBlacklisted(dir string) bool {
	if len(in.dirBL) == 0 {
		return false
	}
	for d := in.blacklistPath(dir); ; d = filepath.Dir(d) {
		if in.dirBL.match(d) {
			return true
		}
		if d == "/" || d == "." {
			return false
		}
	}
}

// dirList is a directory's entries as of its last listing. A directory
// whose mtime and ctime have not changed has the same entries, so a pass
// re-lists only directories that changed; a pass then costs one open and
// fstat per directory plus the file stats, and allocates nothing per file.
type dirList struct {
	mtime, ctime int64
	seen         uint64
	entries      []dirEntry
}

type dirEntry struct {
	name, full string
	typ        fs.FileMode
}

// racyWindow: a directory changed this recently may change again within
// its timestamp granularity (1 s on some file systems) without its mtime
// moving, so its listing is not trusted yet.
const racyWindow = 2 * time.Second

func (in *Input) listDir(d *os.File, st *unix.Stat_t, dir string, now time.Time) []dirEntry {
	mtime, ctime := st.Mtim.Nano(), st.Ctim.Nano()
	if in.dirCache == nil {
		in.dirCache = make(map[string]*dirList)
	}
	l := in.dirCache[dir]
	if l != nil && l.mtime == mtime && l.ctime == ctime && now.UnixNano()-max(mtime, ctime) > int64(racyWindow) {
		l.seen = in.gen
		return l.entries
	}
	ents, err := d.ReadDir(-1)
	if err != nil && len(ents) == 0 {
		return nil
	}
	if l == nil {
		l = &dirList{}
		in.dirCache[dir] = l
	}
	l.mtime, l.ctime, l.seen = mtime, ctime, in.gen
	l.entries = l.entries[:0]
	for _, e := range ents {
		full := dir + "/" + e.Name()
		if dir == "/" {
			full = "/" + e.Name()
		}
		l.entries = append(l.entries, dirEntry{name: e.Name(), full: full, typ: e.Type()})
	}
	return l.entries
}

func (in *Input) walk(dir string, depth int, first bool, now time.Time) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	defer d.Close()
	var dst unix.Stat_t
	if unix.Fstat(int(d.Fd()), &dst) != nil {
		return
	}
	// Symbolic links can make a directory its own descendant: list each
	// directory once per pass.
	if in.visited == nil {
		in.visited = make(map[checkpoint.FileID]uint64)
	}
	if did := fileID(&dst); in.visited[did] == in.gen {
		return
	} else {
		in.visited[did] = in.gen
	}
	entries := in.listDir(d, &dst, dir, now)
	// fstatat relative to the open directory resolves one component
	// instead of the whole path: most of a pass is these stats.
	dfd := int(d.Fd())
	var st unix.Stat_t
	for i := range entries {
		e := &entries[i]
		name, full := e.name, e.full
		typ := e.typ
		if typ&fs.ModeSymlink != 0 {
			if unix.Fstatat(dfd, name, &st, 0) != nil {
				continue
			}
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				typ = fs.ModeDir
			} else {
				typ = 0
			}
		}
		if typ.IsDir() {
			if depth < in.cfg.MaxDepth && (len(in.dirBL) == 0 || !in.dirBL.match(in.blacklistPath(full))) {
				in.walk(full, depth+1, first, now)
			}
			continue
		}
		if !typ.IsRegular() {
			continue
		}
		if ok, _ := filepath.Match(in.cfg.FilePattern, name); !ok {
			continue
		}
		if in.nameBL.match(name) || (len(in.pathBL) > 0 && in.pathBL.match(in.blacklistPath(full))) {
			continue
		}
		if in.skipStat(full, now) {
			continue
		}
		if in.hooks.accept != nil && !in.tracking(full) && !in.hooks.accept(full) {
			continue
		}
		in.stats++
		if unix.Fstatat(dfd, name, &st, 0) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		in.observe(full, &st, first, now)
	}
}

func fileID(st *unix.Stat_t) checkpoint.FileID {
	return checkpoint.FileID{Dev: uint64(st.Dev), Inode: st.Ino}
}

// Files that have not grown for a while are stat'ed on every idleStride-th
// pass only (spread over passes by inode), so the cost of a pass follows the
// number of active files, not of watched ones. A quiet file that starts
// growing again is noticed within idleStride passes; new names are noticed
// at once (they are not tracked yet).
const (
	idleAfter      = time.Minute
	idleStride     = 4
	longIdleAfter  = 10 * time.Minute
	longIdleStride = 10
)

func (in *Input) skipStat(path string, now time.Time) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	f := in.byPath[path]
	if f == nil || f.busy || f.queued || !f.init || f.gone {
		return false
	}
	idle := time.Duration(now.UnixNano() - f.lastGrow.Load())
	var stride uint64
	switch {
	case idle >= longIdleAfter:
		stride = longIdleStride
	case idle >= idleAfter:
		stride = idleStride
	default:
		return false
	}
	if (in.gen+f.id.Inode)%stride == 0 {
		return false
	}
	f.seen = in.gen
	return true
}

// observe records one stat of a matched path.
func (in *Input) observe(path string, st *unix.Stat_t, first bool, now time.Time) {
	id := fileID(st)
	mtime := st.Mtim.Nano()
	in.mu.Lock()
	defer in.mu.Unlock()
	f := in.byPath[path]
	successor := in.saved[path]
	if f != nil && f.id != id {
		successor = true
		// The path names another file now: the old one was renamed away
		// or deleted, and is read to its end through its open descriptor.
		in.detach(f)
		f = nil
		in.replaced = append(in.replaced, rotCheck{path, in.prevPass})
	}
	if f == nil {
		if g := in.byID[id]; g != nil && !g.removed {
			atOwnPath := g.path != "" && in.byPath[g.path] == g
			if atOwnPath && g.path != path && namesFile(g.path, id) {
				// Still at its own path too: the same file under a second
				// name (a symlink or hard link beside it), not a rename. It
				// stays under the path it was found at, whatever order a
				// pass lists the two in.
				return
			}
			// Renamed to this (also matched) path: same file, keep going.
			if atOwnPath {
				delete(in.byPath, g.path)
				in.m.rotations.WithLabelValues(rotRename).Inc()
			}
			g.path, g.gone = path, false
			in.byPath[path] = g
			g.win.update(func(e *checkpoint.Entry) { e.Path = path })
			f = g
		} else {
			if since, ok := in.pathGone[path]; ok {
				// A file is back at a path that lost its file earlier:
				// files may have lived there meanwhile.
				delete(in.pathGone, path)
				in.replaced = append(in.replaced, rotCheck{path, since})
				successor = true
			}
			f = &tracked{path: path, tagPath: path, id: id, initial: first, resume: -1,
				fresh: successor, input: in, size: -1, found: st.Size}
			f.win.wake = make(chan struct{}, 1)
			in.byPath[path] = f
			in.byID[id] = f
			in.all[f] = struct{}{}
		}
	}
	f.seen = in.gen
	if st.Size != f.size || mtime != f.mtime {
		f.size, f.mtime = st.Size, mtime
		f.changed = true
		f.lastGrow.Store(now.UnixNano())
	}
}

// namesFile reports whether path (symlinks followed) is the file id now.
func namesFile(path string, id checkpoint.FileID) bool {
	var st unix.Stat_t
	return unix.Stat(path, &st) == nil && fileID(&st) == id
}

// detach marks f as no longer at a matched path; in.mu is held.
func (in *Input) detach(f *tracked) {
	if in.byPath[f.path] == f {
		delete(in.byPath, f.path)
	}
	f.path, f.gone = "", true
	kind := rotRename
	if f.fd != nil {
		var st unix.Stat_t
		if unix.Fstat(int(f.fd.Fd()), &st) == nil && st.Nlink == 0 {
			kind = rotDelete
		}
	}
	in.m.rotations.WithLabelValues(kind).Inc()
	f.lastGrow.Store(time.Now().UnixNano())
}

// settle runs after the walk: files not seen are detached, finished ones
// dropped, the rest queued when they need a reader; idle descriptors are
// closed and the gauges updated.
func (in *Input) settle(now time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.samples = in.samples[:0]
	nowNs := now.UnixNano()
	var idle []*tracked
	for f := range in.all {
		if !f.gone && f.seen != in.gen {
			p := f.path
			in.detach(f)
			in.replaced = append(in.replaced, rotCheck{p, in.prevPass})
			if !in.prevPass.IsZero() {
				in.pathGone[p] = in.prevPass
			}
		}
		if !f.busy && !f.queued && (f.removed || (f.gone && f.fd == nil)) {
			in.drop(f)
			continue
		}
		if lag := f.size - f.readOff.Load(); f.path != "" && lag > 0 {
			in.samples = append(in.samples, lagSample{path: f.path, lag: lag})
		}
		if f.busy || f.queued {
			continue
		}
		grewAgo := time.Duration(nowNs - f.lastGrow.Load())
		need := !f.init || f.gone || f.more || f.changed ||
			(f.size >= 0 && f.size != f.readEnd.Load()) ||
			(f.pendingFlush.Load() && grewAgo >= in.cfg.FlushTimeout)
		if !need && f.win.isFailed() && now.After(f.retryAt) {
			need = true
		}
		if need {
			select {
			case in.work <- f:
				f.queued = true
			default: // queue full: the next pass retries
			}
		} else if f.fd != nil {
			if grewAgo >= in.cfg.CloseInactive {
				in.closeFD(f)
			} else {
				idle = append(idle, f)
			}
		}
	}
	// Over the descriptor budget: close the idle files that grew least recently.
	if over := int(in.open.Load()) - in.cfg.MaxOpenFiles + in.cfg.Readers; over > 0 {
		slices.SortFunc(idle, func(a, b *tracked) int { return int(a.lastGrow.Load() - b.lastGrow.Load()) })
		for _, f := range idle[:min(over, len(idle))] {
			in.closeFD(f)
		}
	}
	in.m.watchedFiles.Set(float64(len(in.all)))
	in.m.setLag(in.samples, in.cfg.LagMetricFiles)
}

// drop forgets f and its checkpoint entry; in.mu is held. Only files that
// are gone (rotated away, deleted) and fully read or unreadable are dropped.
func (in *Input) drop(f *tracked) {
	if f.fd != nil {
		in.closeFD(f)
	}
	if f.init && !f.removed {
		if unread := f.size - f.readOff.Load(); unread > 0 && f.size >= 0 {
			in.m.lostBytes.Add(float64(unread))
			in.log.Warn("file disappeared before it was read to the end", "path", f.tagPath, "unread_bytes", unread)
		}
	}
	f.win.close()
	if f.init {
		in.finished[f.id] = finishedFile{sig: f.sig, at: time.Now()}
	}
	delete(in.all, f)
	if in.byID[f.id] == f {
		delete(in.byID, f.id)
	}
	if f.path != "" && in.byPath[f.path] == f {
		delete(in.byPath, f.path)
	}
	if f.init {
		in.store.Delete(in.cfg.Name, f.id)
	}
}

// reconcile runs once after the first pass: checkpoint entries whose file
// was not found at a matched path belong to files rotated while the agent
// was down. They are looked for by identity beside their saved path and read
// from the saved offset; entries whose file is gone are dropped, and what
// was not read of them is counted as lost.
func (in *Input) reconcile() {
	entries := in.store.Entries(in.cfg.Name)
	in.mu.Lock()
	claimed := func(e checkpoint.Entry) bool {
		if _, ok := in.byID[e.File]; ok {
			return true
		}
		if in.cfg.IgnoreDevice {
			for id := range in.byID {
				if id.Inode == e.File.Inode {
					return true
				}
			}
		}
		return false
	}
	var orphans []checkpoint.Entry
	for _, e := range entries {
		if !claimed(e) {
			orphans = append(orphans, e)
		}
	}
	in.mu.Unlock()
	listed := map[string][]os.DirEntry{}
	// Files that lived at a checkpointed path after its checkpointed file
	// left it, and were rotated away before the agent saw them (or before a
	// checkpoint recorded them), are read from their start: they were
	// modified after the checkpointed file's last write.
	since := map[string]time.Time{}
	defer func() {
		for path, t := range since {
			in.adoptRotated(path, t)
		}
	}()
	for _, e := range orphans {
		dir := filepath.Dir(e.Path)
		list, ok := listed[dir]
		if !ok {
			list, _ = os.ReadDir(dir)
			listed[dir] = list
		}
		t := e.Updated
		if f := in.findRotated(e, dir, list); f != nil {
			in.mu.Lock()
			in.byID[f.id] = f
			in.all[f] = struct{}{}
			in.mu.Unlock()
			in.log.Info("resuming a file rotated while the agent was down", "path", f.tagPath, "offset", e.Offset)
			if t.After(time.Unix(0, f.mtime)) {
				t = time.Unix(0, f.mtime)
			}
			if t.After(since[e.Path]) {
				since[e.Path] = t
			}
			continue
		}
		if t.After(since[e.Path]) {
			since[e.Path] = t
		}
		in.store.Delete(in.cfg.Name, e.File)
		if e.Size > e.Offset {
			in.m.lostBytes.Add(float64(e.Size - e.Offset))
			in.log.Warn("a checkpointed file was not found (rotated away and deleted while the agent was down); its unread bytes are lost",
				"path", e.Path, "unread_bytes", e.Size-e.Offset)
		}
	}
}

func (in *Input) findRotated(e checkpoint.Entry, dir string, list []os.DirEntry) *tracked {
	var st unix.Stat_t
	buf := make([]byte, checkpoint.SignatureMax)
	for _, de := range list {
		p := filepath.Join(dir, de.Name())
		if unix.Stat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Ino != e.File.Inode ||
			(!in.cfg.IgnoreDevice && uint64(st.Dev) != e.File.Dev) {
			continue
		}
		fd, err := os.Open(p)
		if err != nil {
			continue
		}
		n, err := fd.ReadAt(buf[:e.Sig.Size], 0)
		if (err != nil && n < int(e.Sig.Size)) || !e.Sig.Matches(buf[:n]) {
			_ = fd.Close()
			continue
		}
		in.open.Add(1)
		in.m.openFiles.Inc()
		id := fileID(&st)
		if id != e.File {
			in.store.Delete(in.cfg.Name, e.File)
		}
		f := &tracked{tagPath: e.Path, id: id, gone: true, resume: e.Offset, input: in,
			fd: fd, size: st.Size, mtime: st.Mtim.Nano()}
		f.win.wake = make(chan struct{}, 1)
		f.lastGrow.Store(time.Now().UnixNano())
		return f
	}
	return nil
}

var errRewind = errors.New("rewind")

// compressedSuffixes mark rotated files that logrotate compressed: their
// bytes are not the log's lines, and the lines were read before compression.
var compressedSuffixes = []string{".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".Z"}

// adoptRotated handles rotations faster than the poll interval: when path
// is found replaced, a file that lived there between two passes (created,
// written and rotated away unseen) would be lost. Files beside path whose
// name extends path's (app.log.1, app.log-20260101), that are not tracked
// and were modified since the previous pass began are such files: they are
// read from their start, like rotated files.
func (in *Input) adoptRotated(path string, since time.Time) {
	if since.IsZero() {
		return
	}
	// One second of slack for file systems with coarse timestamps.
	recent := func(st *unix.Stat_t) bool { return st.Mtim.Nano() >= since.Add(-time.Second).UnixNano() }
	in.rotatedSiblings(path, recent, func(full string, fd *os.File, st *unix.Stat_t) bool {
		id := fileID(st)
		in.mu.Lock()
		fin, done := in.finished[id]
		in.mu.Unlock()
		if done {
			// Read to its end and dropped a moment ago (same identity and
			// first bytes): not a file that was missed.
			var buf [checkpoint.SignatureMax]byte
			n, _ := fd.ReadAt(buf[:fin.sig.Size], 0)
			if fin.sig.Matches(buf[:n]) {
				_ = fd.Close()
				return true
			}
		}
		if in.adoptGone(path, fd, st, 0) {
			in.m.rotations.WithLabelValues(rotRename).Inc()
			in.log.Info("found a file rotated between two discovery passes; reading it from its start", "path", full)
		}
		return true
	})
}

// rotatedSiblings calls fn with each file beside path whose name extends
// path's (app.log.1, app.log-20260101): regular, not compressed, accepted
// by keep (from stat), not tracked, and opened (fd is fn's to keep or
// close; st is the open file's). fn returns false to stop.
func (in *Input) rotatedSiblings(path string, keep func(st *unix.Stat_t) bool, fn func(full string, fd *os.File, st *unix.Stat_t) bool) {
	dir, base := filepath.Split(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var st unix.Stat_t
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, base) || name == base || !e.Type().IsRegular() ||
			slices.ContainsFunc(compressedSuffixes, func(s string) bool { return strings.HasSuffix(name, s) }) {
			continue
		}
		full := filepath.Join(dir, name)
		if unix.Stat(full, &st) != nil || !keep(&st) {
			continue
		}
		id := fileID(&st)
		in.mu.Lock()
		_, known := in.byID[id]
		in.mu.Unlock()
		if known {
			continue
		}
		fd, err := os.Open(full)
		if err != nil {
			continue
		}
		var fst unix.Stat_t
		if unix.Fstat(int(fd.Fd()), &fst) != nil || fileID(&fst) != id {
			_ = fd.Close() // replaced between stat and open
			continue
		}
		if !fn(full, fd, &fst) {
			return
		}
	}
}

// adoptGone tracks fd, a file no longer at path (rotated away), to be read
// from resume to its end. False (fd closed) when a discovery pass adopted
// the same file meanwhile.
func (in *Input) adoptGone(path string, fd *os.File, st *unix.Stat_t, resume int64) bool {
	id := fileID(st)
	f := &tracked{tagPath: path, id: id, gone: true, resume: resume, input: in, fd: fd, size: st.Size, mtime: st.Mtim.Nano()}
	f.win.wake = make(chan struct{}, 1)
	f.lastGrow.Store(time.Now().UnixNano())
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, known := in.byID[id]; known {
		_ = fd.Close()
		return false
	}
	in.open.Add(1)
	in.m.openFiles.Inc()
	in.byID[id] = f
	in.all[f] = struct{}{}
	return true
}
