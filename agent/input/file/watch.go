package file

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"

	"github.com/sluicelog/sluice/agent/checkpoint"
)

// watchedDir is a directory watched with inotify.
type watchedDir struct {
	depth int    // levels below a logPath directory
	seen  uint64 // pass that last walked it
}

// eventBuffer is how many inotify events wait for the scanner: a burst of
// creations while it is busy does not stall the kernel queue (16,384 by
// default; overflowing it costs a full pass, never a file).
const eventBuffer = 4096

// watchRetry: after the inotify watch limit was hit, new directories are
// polled only, and watching them is tried again this much later.
const watchRetry = time.Minute

// openWatcher starts inotify. Without it (no inotify, or no instances left)
// discovery polls only, and says so.
func (in *Input) openWatcher() {
	w, err := fsnotify.NewBufferedWatcher(eventBuffer)
	if err != nil {
		in.log.Warn("inotify unavailable: files are discovered by polling only, so a file that lives shorter than the poll interval may be read only after a restart or not at all",
			"error", err, "poll_interval", in.cfg.PollInterval)
		return
	}
	in.watcher = w
}

// watch adds dir (depth levels below a logPath) to inotify, once.
func (in *Input) watch(dir string, depth int) {
	if in.watcher == nil {
		return
	}
	if d, ok := in.watched[dir]; ok {
		d.seen = in.gen
		d.depth = depth
		in.watched[dir] = d
		return
	}
	if time.Now().Before(in.watchFull) {
		return
	}
	if err := in.watcher.Add(dir); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			in.watchFull = time.Now().Add(watchRetry)
			in.log.Warn("inotify watch limit reached (fs.inotify.max_user_watches): further directories are discovered by polling only",
				"dir", dir, "watched_dirs", len(in.watched), "poll_interval", in.cfg.PollInterval)
		}
		return
	}
	in.watched[dir] = watchedDir{depth: depth, seen: in.gen}
	in.m.inotifyDirs.Set(float64(len(in.watched)))
}

// unwatchGone stops watching directories the last pass did not walk.
func (in *Input) unwatchGone() {
	for dir, d := range in.watched {
		if d.seen != in.gen {
			_ = in.watcher.Remove(dir) // fails for a deleted directory: already gone
			delete(in.watched, dir)
		}
	}
	in.m.inotifyDirs.Set(float64(len(in.watched)))
}

// onEvents handles ev and whatever else is waiting, then looks beside the
// paths whose file changed and queues the files found.
func (in *Input) onEvents(ev fsnotify.Event, more <-chan fsnotify.Event) {
	now := time.Now()
	in.onEvent(ev, now)
drain:
	for range eventBuffer {
		select {
		case ev, ok := <-more:
			if !ok {
				break drain
			}
			in.onEvent(ev, now)
		default:
			break drain
		}
	}
	in.checkRotations()
	in.queueFound(now)
}

// queueFound hands the files found since the last pass to the readers.
func (in *Input) queueFound(now time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, f := range in.found {
		if _, ok := in.all[f]; ok {
			in.enqueue(f, now)
		}
	}
	clear(in.found)
	in.found = in.found[:0]
}

// onEvent reacts to a file or directory created in (or renamed into) a
// watched directory; other events wait for the next pass, which sees
// growth, renames away and deletions by stat.
func (in *Input) onEvent(ev fsnotify.Event, now time.Time) {
	if !ev.Has(fsnotify.Create) {
		return
	}
	full := ev.Name
	d, ok := in.watched[filepath.Dir(full)]
	if !ok {
		return
	}
	var st unix.Stat_t
	if unix.Stat(full, &st) != nil {
		// Gone already: its rotated name or compressed copy is reported
		// next.
		return
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if d.depth < in.cfg.MaxDepth && (len(in.dirBL) == 0 || !in.dirBL.match(in.blacklistPath(full))) {
			in.walk(full, d.depth+1, false, now)
		}
	case unix.S_IFREG:
		if in.matches(filepath.Base(full), full) {
			if in.hooks.accept != nil && !in.tracking(full) && !in.hooks.accept(full) {
				return
			}
			in.stats++
			if f := in.observe(full, &st, false, now); f != nil {
				in.discovered(f, -1, full)
			}
			return
		}
		if p := in.rotationOf(full); p != "" {
			in.adoptRotated(p, time.Time{}, full)
		}
	}
}

// onWatchError handles an inotify error: a queue overflow lost events, so a
// full pass runs now.
func (in *Input) onWatchError(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		in.m.inotifyOverflows.Inc()
		in.log.Warn("inotify event queue overflowed; running a discovery pass now")
		in.scan(false)
		return
	}
	in.log.Warn("inotify error; polling continues", "error", err)
}

// doneGC removes tombstones (Done entries) of files that no longer exist.
type doneGC struct {
	every   time.Duration // doneGCInterval; tests shorten it
	last    time.Time
	missing map[checkpoint.FileID]time.Time // tombstones whose file was missing, since when
}

// doneGCInterval: how often tombstones are checked; one whose file was
// missing at two checks this far apart is removed. The grace keeps it
// while a compressed copy made just before the deletion may still be
// looked at (after a restart, among the files changed since the last
// checkpoint write).
const doneGCInterval = time.Minute

// collectDone removes the tombstones of files that are gone for good.
func (in *Input) collectDone(now time.Time) {
	if in.gc.every == 0 {
		in.gc.every = doneGCInterval
	}
	if now.Sub(in.gc.last) < in.gc.every {
		return
	}
	in.gc.last = now
	if in.gc.missing == nil {
		in.gc.missing = make(map[checkpoint.FileID]time.Time)
	}
	inodes := map[string]map[uint64]bool{}
	present := func(dir string, ino uint64) bool {
		set, ok := inodes[dir]
		if !ok {
			set = map[uint64]bool{}
			ents, _ := os.ReadDir(dir)
			var st unix.Stat_t
			for _, e := range ents {
				if unix.Lstat(filepath.Join(dir, e.Name()), &st) == nil {
					set[st.Ino] = true
				}
			}
			inodes[dir] = set
		}
		return set[ino]
	}
	live := map[checkpoint.FileID]bool{}
	for _, e := range in.store.Entries(in.cfg.Name) {
		if !e.Done {
			continue
		}
		live[e.File] = true
		if present(filepath.Dir(e.Path), e.File.Inode) {
			delete(in.gc.missing, e.File)
			continue
		}
		since, ok := in.gc.missing[e.File]
		if !ok {
			in.gc.missing[e.File] = now
			continue
		}
		if now.Sub(since) >= in.gc.every/2 {
			in.store.Delete(in.cfg.Name, e.File)
			delete(in.gc.missing, e.File)
		}
	}
	for id := range in.gc.missing {
		if !live[id] {
			delete(in.gc.missing, id)
		}
	}
}
