package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"

	"github.com/sluicelog/sluice/agent/checkpoint"
)

func (in *Input) scanLoop(ctx context.Context) {
	in.openWatcher()
	// The scanner owns the watcher: closed when it returns, also when Stop
	// gave up waiting for it (a second signal), so its goroutine never
	// outlives the input.
	defer func() {
		if in.watcher != nil {
			_ = in.watcher.Close()
		}
	}()
	in.beginConfig()
	in.scan(true)
	in.reconcile()
	in.endFirstPass()
	in.queueFound(time.Now())
	t := time.NewTicker(in.cfg.PollInterval)
	defer t.Stop()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if in.watcher != nil {
		events, errs = in.watcher.Events, in.watcher.Errors
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			in.scan(false)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			in.onEvents(ev, events)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			in.onWatchError(err)
		}
	}
}

// beginConfig decides whether this is the config's very first start: only
// then are files already present read by the existing-files rules. A
// config that matches other files than at its last start (logPath,
// filePattern, maxDepth or blacklists changed) treats the files it matches
// now as existing too, as Logtail does for an updated config.
func (in *Input) beginConfig() {
	in.startedAt = time.Now()
	st, ok := in.store.Config(in.cfg.Name)
	in.firstStart = !ok || (st.Match != "" && st.Match != in.matchKey())
	in.lastWrite = in.store.LastWrite()
	if in.firstStart {
		// Record the first start on disk before the first pass: an agent
		// killed during that pass (a crash loop, a slow disk) restarts as a
		// later start and reads every file it has no entry for from 0. It
		// had restarted as a first start instead and read a file that had
		// grown past tail_size_kb meanwhile from its last MiB: the head
		// written since the real first start was lost (TestCrashLoop lost
		// lines 1-9807 on a loaded machine). Files present at the real
		// first start but not recorded before the kill are read whole:
		// duplicates of old lines, never a loss.
		if st.Started.IsZero() { // a changed config keeps its first start
			st.Started = time.Now()
		}
		st.Match = in.matchKey()
		in.store.SetConfig(in.cfg.Name, st)
		// A failure is logged and counted by the store, which retries.
		_ = in.store.Flush()
	}
}

// bornAfterStart reports whether the file at path was created after this
// start of the input began (its birth time, where the filesystem keeps one:
// ext4, xfs, btrfs, tmpfs): such a file is new even when the first discovery
// pass is what finds it, and the existing-file rules do not apply to it. A
// first pass that comes late (a loaded machine, a large tree) would
// otherwise read a file created meanwhile from its last tail_size_kb.
func (in *Input) bornAfterStart(path string) bool {
	if !in.firstStart {
		return false // the rules apply at a first start only
	}
	var stx unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, path, unix.AT_STATX_DONT_SYNC, unix.STATX_BTIME, &stx) != nil || stx.Mask&unix.STATX_BTIME == 0 {
		return false
	}
	return time.Unix(stx.Btime.Sec, int64(stx.Btime.Nsec)).After(in.startedAt)
}

// endFirstPass records the config as started and writes the checkpoint at
// once: every file found so far has its entry on disk before the agent can
// be killed, so a crash loop faster than any write interval keeps state.
func (in *Input) endFirstPass() {
	st, ok := in.store.Config(in.cfg.Name)
	if !ok || st.Started.IsZero() {
		st.Started = time.Now()
	}
	st.Match = in.matchKey()
	in.store.SetConfig(in.cfg.Name, st)
	// A failure is logged and counted by the store, which retries.
	_ = in.store.Flush()
}

// matchKey identifies which files the config matches.
func (in *Input) matchKey() string {
	c := in.cfg
	h := sha256.Sum256(fmt.Appendf(nil, "%q %q %d %q %q %q %v", c.LogPath, c.FilePattern, c.MaxDepth,
		c.DirBlacklist, c.FilenameBlacklist, c.FilepathBlacklist, in.hooks.dirs != nil))
	return hex.EncodeToString(h[:8])
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
	in.unwatchGone()
	in.recheckSiblings(now)
	in.settle(now)
	in.checkRotations()
	in.queueFound(now)
	for p, since := range in.pathGone {
		if now.Sub(since) > time.Hour {
			delete(in.pathGone, p)
		}
	}
	in.collectDone(now)
}

// checkRotations looks beside every path whose file changed for files that
// lived there unseen (see adoptRotated).
func (in *Input) checkRotations() {
	for _, c := range in.replaced {
		in.adoptRotated(c.path, c.since)
	}
	in.replaced = in.replaced[:0]
	in.settleOrphans()
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
	// A directory that appeared after the start (it was not listed by the
	// last pass): files rotated in it before it was listed — gzipped and
	// deleted, or renamed out of the pattern — are as new as the files
	// found there, and are looked for beside them (adoptRotated).
	newDir := !first && in.dirCache[dir] == nil
	// Watched before it is listed: a file created in between is reported.
	in.watch(dir, depth)
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
		if !in.matches(name, full) {
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
		if f := in.observe(full, &st, first, now); f != nil {
			in.discovered(f, dfd, name)
			if newDir {
				in.replaced = append(in.replaced, rotCheck{full, in.startedAt})
			}
		}
	}
}

// matches reports whether a file named name at full is one to tail:
// filePattern matches, no blacklist does, and it is not compressed
// (compressed files are only read as rotated copies, see adoptRotated).
func (in *Input) matches(name, full string) bool {
	if ok, _ := filepath.Match(in.cfg.FilePattern, name); !ok {
		return false
	}
	if in.nameBL.match(name) || (len(in.pathBL) > 0 && in.pathBL.match(in.blacklistPath(full))) {
		return false
	}
	return compression(name) == nil
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

// observe records one stat of a matched path. It returns the file when it
// is new: the caller opens it and records its start (discovered).
func (in *Input) observe(path string, st *unix.Stat_t, first bool, now time.Time) *tracked {
	id := fileID(st)
	mtime := st.Mtim.Nano()
	in.mu.Lock()
	defer in.mu.Unlock()
	f := in.byPath[path]
	var isNew *tracked
	if f != nil && f.id != id {
		// The path names another file now: the old one was renamed away
		// or deleted, and is read to its end through its open descriptor.
		in.detach(f)
		f = nil
		in.replaced = append(in.replaced, rotCheck{path, in.prevPass})
	}
	if g := in.byID[id]; g != nil && g.removed && f == nil {
		// Read to its end, closed, and deleted: its inode names a new file
		// now. Its position is kept by content alone.
		in.retire(g)
	}
	if f == nil {
		if g := in.byID[id]; g != nil && !g.removed {
			atOwnPath := g.path != "" && in.byPath[g.path] == g
			if atOwnPath && g.path != path && namesFile(g.path, id) {
				// Still at its own path too: the same file under a second
				// name (a symlink or hard link beside it), not a rename. It
				// stays under the path it was found at, whatever order a
				// pass lists the two in.
				return nil
			}
			// Renamed to this (also matched) path: same file, keep going.
			if atOwnPath {
				delete(in.byPath, g.path)
				in.m.rotations.WithLabelValues(rotRename).Inc()
			}
			g.path, g.gone = path, false
			in.byPath[path] = g
			g.win.update(func(e *checkpoint.Entry) { e.Path = path; e.Done = false })
			f = g
		} else {
			if since, ok := in.pathGone[path]; ok {
				// A file is back at a path that lost its file earlier:
				// files may have lived there meanwhile.
				delete(in.pathGone, path)
				in.replaced = append(in.replaced, rotCheck{path, since})
			}
			f = &tracked{path: path, tagPath: path, id: id, initial: first && !in.bornAfterStart(path), resume: -1,
				input: in, size: -1, found: st.Size}
			f.win.prepare()
			in.byPath[path] = f
			in.byID[id] = f
			in.all[f] = struct{}{}
			f.discovering = true // not queued until discovered ran
			isNew = f
		}
	}
	f.seen = in.gen
	if st.Size != f.size || mtime != f.mtime {
		f.size, f.mtime = st.Size, mtime
		f.changed = true
		f.lastGrow.Store(now.UnixNano())
	}
	return isNew
}

// discovered runs for a file observe found new: it opens the file at once
// (rotated or deleted a moment later, it is still read through the
// descriptor) and records where reading starts in the checkpoint store. dfd
// is the open directory and name the file in it, or dfd < 0 and name the
// whole path. Without a descriptor to spare the file is opened when a
// reader gets to it, and only an offset-0 start is recorded meanwhile.
func (in *Input) discovered(f *tracked, dfd int, name string) {
	if in.open.Load() < int64(in.cfg.MaxOpenFiles) {
		fd, err := openAt(dfd, name)
		if err == nil {
			var st unix.Stat_t
			if unix.Fstat(int(fd.Fd()), &st) != nil || fileID(&st) != f.id {
				_ = fd.Close()
				err = errors.New("replaced")
			} else {
				in.mu.Lock()
				in.setFD(f, fd)
				in.mu.Unlock()
				in.begin(f, in.scanBuf)
			}
		}
		if err != nil {
			// Renamed or deleted between stat and open: forgotten here,
			// looked for under its rotated name (and counted as lost if
			// it is not found).
			in.mu.Lock()
			in.forget(f)
			in.orphans = append(in.orphans, orphan{f, time.Now()})
			in.mu.Unlock()
			in.replaced = append(in.replaced, rotCheck{f.tagPath, time.Now().Add(-time.Second)})
			return
		}
	} else if !in.firstStart || !f.initial {
		// Read from 0 whenever it is read: say so now, before a crash can
		// make the agent forget the file.
		if _, ok := in.store.Find(in.cfg.Name, f.id, f.tagPath, in.cfg.IgnoreDevice, func(checkpoint.Signature) bool { return true }); !ok {
			in.store.Put(checkpoint.Entry{Config: in.cfg.Name, Path: f.tagPath, File: f.id, Size: max(f.found, 0)})
		}
	}
	in.mu.Lock()
	f.discovering = false
	in.found = append(in.found, f)
	in.mu.Unlock()
}

// forget removes f from the maps; in.mu is held.
func (in *Input) forget(f *tracked) {
	delete(in.all, f)
	if in.byID[f.id] == f {
		delete(in.byID, f.id)
	}
	if f.path != "" && in.byPath[f.path] == f {
		delete(in.byPath, f.path)
	}
}

// orphanGrace is how long a file that left its path before it could be
// opened may take to show up again under another name (renamed, compressed)
// before it is counted as lost.
const orphanGrace = 10 * time.Second

// orphan is a file seen but never opened that left its path.
type orphan struct {
	f  *tracked
	at time.Time
}

// settleOrphans runs after the rotation checks: a file seen but never
// opened that left its path, and that did not show up again under another
// name — by identity, or as a file of unknown content found beside its path
// since — is lost.
func (in *Input) settleOrphans() {
	now := time.Now()
	in.mu.Lock()
	defer in.mu.Unlock()
	keep := in.orphans[:0]
	for _, o := range in.orphans {
		f := o.f
		if _, adopted := in.byID[f.id]; adopted {
			continue
		}
		if in.claimAdoption(f.tagPath, o.at) {
			continue
		}
		if now.Sub(o.at) < in.orphanGrace {
			keep = append(keep, o)
			continue
		}
		if e, ok := in.store.Find(in.cfg.Name, f.id, "", false, func(s checkpoint.Signature) bool { return s.Size == 0 }); ok && e.Offset == 0 {
			in.store.Delete(in.cfg.Name, f.id)
		}
		if f.size > 0 {
			in.lost(f.tagPath, f.size, "a file left its path before it could be opened and was not found under another name")
		}
	}
	clear(in.orphans[len(keep):])
	in.orphans = keep
	for p, times := range in.adoptions {
		for len(times) > 0 && now.Sub(times[0]) > 2*in.orphanGrace {
			times = times[1:]
		}
		if len(times) == 0 {
			delete(in.adoptions, p)
		} else {
			in.adoptions[p] = times
		}
	}
}

// claimAdoption consumes a file of unknown content adopted beside path at
// or after since, if there is one; in.mu is held.
func (in *Input) claimAdoption(path string, since time.Time) bool {
	times := in.adoptions[path]
	for i, t := range times {
		if !t.Before(since.Add(-time.Second)) {
			in.adoptions[path] = append(times[:i], times[i+1:]...)
			return true
		}
	}
	return false
}

// openAt opens name relative to the directory dfd (a whole path when
// dfd < 0) for reading.
func openAt(dfd int, name string) (*os.File, error) {
	if dfd < 0 {
		return os.Open(name)
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
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
		if !f.busy && !f.queued && !f.discovering && (f.removed || (f.gone && f.fd == nil && f.win.empty())) {
			in.drop(f)
			continue
		}
		if lag := f.size - f.readOff.Load(); f.path != "" && lag > 0 {
			in.samples = append(in.samples, lagSample{path: f.path, lag: lag})
		}
		if f.busy || f.queued || f.discovering {
			continue
		}
		if in.needsRead(f, now) {
			in.push(f)
			continue
		}
		if f.fd != nil {
			if time.Duration(nowNs-f.lastGrow.Load()) >= in.cfg.CloseInactive {
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

// enqueue hands f to a reader when it needs one; in.mu is held.
func (in *Input) enqueue(f *tracked, now time.Time) {
	if !f.busy && !f.queued && !f.discovering && !f.removed && in.needsRead(f, now) {
		in.push(f)
	}
}

// needsRead reports whether f has something for a reader to do; in.mu is
// held.
func (in *Input) needsRead(f *tracked, now time.Time) bool {
	grewAgo := time.Duration(now.UnixNano() - f.lastGrow.Load())
	need := !f.init || f.gone || f.more || f.changed ||
		(f.size >= 0 && f.size != f.readEnd.Load()) ||
		(f.pendingFlush.Load() && grewAgo >= in.cfg.FlushTimeout)
	return need || (f.win.isFailed() && now.After(f.retryAt))
}

// push queues f for a reader; in.mu is held. A full queue leaves it to
// the next pass.
func (in *Input) push(f *tracked) {
	select {
	case in.work <- f:
		f.queued = true
	default:
	}
}

// drop forgets f; in.mu is held. Only files that are gone (rotated away,
// deleted) and fully read or unreadable are dropped. The checkpoint entry
// of a file read to its end stays as a Done tombstone (see collectDone).
func (in *Input) drop(f *tracked) {
	if f.fd != nil {
		var st unix.Stat_t
		if unix.Fstat(int(f.fd.Fd()), &st) == nil && st.Nlink == 0 {
			f.deleted = true
		}
		in.closeFD(f)
	}
	unread := int64(0)
	if f.size >= 0 {
		unread = f.size - f.readOff.Load()
	}
	if !f.init {
		// Never opened (no descriptor to spare): perhaps found again
		// under its rotated name (settleOrphans).
		in.forget(f)
		in.orphans = append(in.orphans, orphan{f, time.Now()})
		return
	}
	if f.init && !f.removed && unread > 0 {
		in.lost(f.tagPath, unread, "the file disappeared before it was read to the end")
	}
	f.win.close()
	in.forget(f)
	if f.retired {
		return
	}
	e, done := f.win.finished(f.readOff.Load())
	if done && (f.removed || unread <= 0) {
		if f.deleted {
			// Its inode may belong to another file any moment: the
			// tombstone is kept under its content alone.
			in.store.Delete(in.cfg.Name, f.id)
			e.File = contentID(e.Sig)
		}
		in.store.Put(e)
		return
	}
	in.store.Delete(in.cfg.Name, f.id)
}

// retire turns the entry of f, read to its end and removed, into a
// tombstone kept by content, and gives up f's identity (its inode was
// reused); in.mu is held. drop then leaves the store alone.
func (in *Input) retire(f *tracked) {
	e, _ := f.win.finished(0)
	in.store.Delete(in.cfg.Name, f.id)
	if e.Sig.Size > 0 {
		e.File = contentID(e.Sig)
		in.store.Put(e)
	}
	if in.byID[f.id] == f {
		delete(in.byID, f.id)
	}
	f.retired = true
}

// contentID is the key of a tombstone kept for a file that no longer
// exists: device 0 (no file system has it) and the signature's hash.
func contentID(sig checkpoint.Signature) checkpoint.FileID {
	return checkpoint.FileID{Dev: 0, Inode: sig.Hash}
}

// keepTombstone moves a tombstone whose inode now names another file to
// its content key, so that copies of the old file are still known.
func (in *Input) keepTombstone(e checkpoint.Entry) {
	if !e.Done || e.Sig.Size == 0 || e.File.Dev == 0 {
		return
	}
	in.store.Delete(in.cfg.Name, e.File)
	e.File = contentID(e.Sig)
	in.store.Put(e)
}

// lost counts bytes that will never be read and says where they were.
func (in *Input) lost(path string, n int64, why string) {
	in.log.Warn(why+"; its unread bytes are lost (sluice_file_lost_bytes_total)", "path", path, "unread_bytes", n)
	in.m.lostBytes.Add(float64(n))
}

// restartSlack: a file the previous run found after its last checkpoint
// write was modified at most this long before that write (discovery lag
// and coarse file system timestamps).
func (in *Input) restartSlack() time.Duration { return 2*in.cfg.PollInterval + 2*time.Second }

// reconcile runs once after the first pass: checkpoint entries whose file
// was not found at a matched path belong to files rotated while the agent
// was down. They are looked for by identity beside their saved path (or, for
// a compressed rotation, by content) and read from the saved offset; entries
// whose file is gone are dropped, and what was not read of them is counted
// as lost. Then files beside every checkpointed path that the checkpoint
// does not know and that changed since it was last written are read from
// their start: they lived there while the agent was down, or were found by
// the previous run after its last checkpoint write; at a config's very
// first start, files beside them changed since that start began.
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
		if !claimed(e) && !e.Done {
			orphans = append(orphans, e)
		}
	}
	in.mu.Unlock()
	listed := map[string][]os.DirEntry{}
	var since time.Time
	for _, e := range orphans {
		dir := filepath.Dir(e.Path)
		list, ok := listed[dir]
		if !ok {
			list, _ = os.ReadDir(dir)
			listed[dir] = list
		}
		if f := in.findRotated(e, dir, list); f != nil {
			in.mu.Lock()
			in.byID[f.id] = f
			in.all[f] = struct{}{}
			in.found = append(in.found, f)
			in.mu.Unlock()
			in.log.Info("resuming a file rotated while the agent was down", "path", f.tagPath, "offset", e.Offset)
			continue
		}
		if in.adoptCompressedCopy(e) {
			continue
		}
		in.store.Delete(in.cfg.Name, e.File)
		if e.Sig.Size == 0 {
			// Found but never read: what it held is unknown, and so is
			// whether a copy of it is below. Files beside it changed since
			// it was found are read from their start.
			if since.IsZero() || e.Updated.Before(since) {
				since = e.Updated
			}
		}
		if e.Size > e.Offset {
			in.lost(e.Path, e.Size-e.Offset, "a checkpointed file was not found (rotated away and deleted while the agent was down)")
		}
	}
	if !in.lastWrite.IsZero() && (since.IsZero() || in.lastWrite.Before(since)) {
		since = in.lastWrite
	}
	switch {
	case !since.IsZero():
		since = since.Add(-in.restartSlack())
	case in.firstStart:
		// The very first start: what changed beside the followed paths
		// since it began was rotated after it (the first pass came late:
		// a loaded machine, a slow checkpoint write), not a file that
		// existed before the agent. A storm rotating every 50 ms had
		// gzipped and deleted its first file (2,548 lines) before the
		// first pass, which skipped the .gz as an old rotated file.
		since = in.startedAt
	default:
		return
	}
	paths := map[string]bool{}
	for _, e := range entries {
		paths[e.Path] = true
	}
	in.mu.Lock()
	for p := range in.byPath {
		paths[p] = true
	}
	in.mu.Unlock()
	for p := range paths {
		in.adoptRotated(p, since)
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
		id := fileID(&st)
		if id != e.File {
			in.store.Delete(in.cfg.Name, e.File)
		}
		f := &tracked{tagPath: e.Path, id: id, gone: true, resume: e.Offset, input: in,
			size: st.Size, mtime: st.Mtim.Nano()}
		f.win.prepare()
		f.lastGrow.Store(time.Now().UnixNano())
		in.mu.Lock()
		in.setFD(f, fd)
		in.mu.Unlock()
		in.begin(f, buf)
		return f
	}
	return nil
}

var errRewind = errors.New("rewind")
