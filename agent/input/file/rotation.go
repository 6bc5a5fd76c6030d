package file

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluicelog/sluice/agent/checkpoint"
)

// Rotated files the input finds beside a path it watches: a renamed file it
// never saw (it lived between two looks), the copy a copytruncate rotation
// made, a compressed copy of either. Whether such a file's content was read
// is decided by its content, never assumed: its first bytes (decompressed)
// are compared with what the input knows — checkpoint entries (tombstones of
// files read to their end included), files it is reading, and content
// truncated away whose copy has not been found yet.

// sibling is a file beside a watched path whose name extends the path's.
type sibling struct {
	full   string
	id     checkpoint.FileID
	st     unix.Stat_t
	fd     *os.File
	z      *zsource // compressed: read through this
	prefix []byte   // first ≤ SignatureMax content bytes (decompressed)
	// short: fewer content bytes than the file will have (a compressed file
	// still being written); its content cannot be judged yet.
	short bool
}

func (s *sibling) close() {
	if s.z != nil {
		s.z.close()
	}
	_ = s.fd.Close()
}

// rotatedSiblings calls fn with each file beside path whose name extends
// path's (app.log.1, app.log-20260101, app.log.1.gz) — or only with the
// file named only, when not empty — that is regular, accepted by keep (from
// stat), not tracked, and opened (fn must keep or close it). fn returns
// false to stop.
func (in *Input) rotatedSiblings(path, only string, keep func(st *unix.Stat_t) bool, fn func(s *sibling) bool) {
	dir, base := filepath.Split(path)
	var names []string
	if only != "" {
		names = []string{filepath.Base(only)}
	} else {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				names = append(names, e.Name())
			}
		}
	}
	for _, name := range names {
		if !strings.HasPrefix(name, base) || name == base {
			continue
		}
		s := in.openSibling(filepath.Join(dir, name), keep)
		if s == nil {
			continue
		}
		if !fn(s) {
			return
		}
	}
}

// openSibling opens full for rotatedSiblings; nil when it is not a regular
// file, keep refuses it, it is tracked already or cannot be read.
func (in *Input) openSibling(full string, keep func(st *unix.Stat_t) bool) *sibling {
	s := &sibling{full: full}
	if unix.Stat(full, &s.st) != nil || s.st.Mode&unix.S_IFMT != unix.S_IFREG || (keep != nil && !keep(&s.st)) {
		return nil
	}
	s.id = fileID(&s.st)
	in.mu.Lock()
	g, known := in.byID[s.id]
	if known && g.removed {
		// Read to its end and closed: the inode was freed and reused.
		in.retire(g)
		known = false
	}
	in.mu.Unlock()
	if known {
		return nil
	}
	fd, err := os.Open(full)
	if err != nil {
		return nil
	}
	if unix.Fstat(int(fd.Fd()), &s.st) != nil || fileID(&s.st) != s.id {
		_ = fd.Close() // replaced between stat and open
		return nil
	}
	s.fd = fd
	buf := make([]byte, checkpoint.SignatureMax)
	if c := compression(full); c != nil {
		if c.open == nil {
			in.warnUnreadable(full, c.suffix)
			_ = fd.Close()
			return nil
		}
		s.z = newZSource(fd, c)
		n, _ := s.z.ReadAt(buf, 0)
		s.prefix = buf[:n]
		s.short = n < len(buf) && s.z.problem() != ""
		in.mu.Lock()
		if _, ok := in.recheck[full]; s.short && !ok && len(in.recheck) < maxRecheck {
			// Still being written: looked at again by the next passes.
			in.recheck[full] = time.Now()
		} else if !s.short {
			delete(in.recheck, full)
		}
		in.mu.Unlock()
		return s
	}
	n, _ := fd.ReadAt(buf, 0)
	s.prefix = buf[:n]
	return s
}

// Compressed siblings still being written when looked at are looked at
// again by the next passes, for recheckFor (Input.recheck).
const (
	maxRecheck = 64
	recheckFor = 30 * time.Second
)

// knowledge is what the input knows about content beside a path, gathered
// once per look at the path's siblings.
type knowledge struct {
	entries []checkpoint.Entry // this config's checkpoint entries
	reading []readingFile      // files being read in the path's directory
}

// readingFile is a file being read: its first bytes now, and the signature
// its checkpoint entry has (of the content read so far).
type readingFile struct {
	prefix []byte
	sig    checkpoint.Signature
}

func (in *Input) knowledgeOf(path string) *knowledge {
	k := &knowledge{entries: in.store.Entries(in.cfg.Name)}
	in.mu.Lock()
	defer in.mu.Unlock()
	dir := filepath.Dir(path)
	for f := range in.all {
		// Every open file of the directory, not only those found at path:
		// with a filePattern that matches rotated names (app.log*) a file
		// may have been followed to app.log.1, or not be seen renamed yet,
		// when its compressed copy app.log.1.gz appears.
		if (filepath.Dir(f.tagPath) != dir && (f.path == "" || filepath.Dir(f.path) != dir)) || f.fd == nil || f.z != nil || f.discovering {
			continue
		}
		// Read under in.mu: a descriptor is only closed under it.
		buf := make([]byte, checkpoint.SignatureMax)
		n, _ := f.fd.ReadAt(buf, 0)
		k.reading = append(k.reading, readingFile{prefix: buf[:n], sig: f.win.sig()})
	}
	return k
}

// unknown decides whether s holds content the input has not read: it
// returns where reading s must start and true, or false when s was read (or
// is being read, or is a copy of a file being read). A file without content
// yet is not judged.
func (in *Input) unknown(s *sibling, k *knowledge) (int64, bool) {
	if len(s.prefix) == 0 || s.short {
		return 0, false
	}
	sig := checkpoint.Sign(s.prefix)
	for _, r := range k.reading {
		if len(s.prefix) <= len(r.prefix) && bytes.Equal(r.prefix[:len(s.prefix)], s.prefix) {
			return 0, false // a copy of a file being read (perhaps still being made)
		}
		if r.sig.Size > 0 && r.sig.Matches(s.prefix) && !r.sig.Matches(r.prefix) {
			// The file was truncated or rewritten since it was last read,
			// and s is a copy of what it held: its reader hands the copy
			// over when it notices (adoptCopy).
			return 0, false
		}
	}
	for _, e := range k.entries {
		if e.File == s.id && (e.Sig.Size == 0 || e.Sig.Matches(s.prefix)) {
			if e.Done {
				return 0, false // this very file, read to its end
			}
			return e.Offset, true // this very file, found but not read to its end
		}
		if e.Sig.Size > 0 && e.Sig.Size >= sig.Size && e.Sig.Matches(s.prefix) {
			// A copy (compressed or by copytruncate) of a file known to
			// the checkpoint. Two files of log lines do not share their
			// first kilobyte — timestamps and counters differ — and a
			// signature shorter than the sibling's prefix proves nothing
			// (the sibling may only start like the file).
			return 0, false
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, c := range in.copies {
		if c.sig.Matches(s.prefix) {
			// The copy of content truncated away: its head was read before
			// the truncation.
			in.copies = append(in.copies[:i], in.copies[i+1:]...)
			return c.off, true
		}
	}
	return 0, true
}

// adoptRotated handles rotations faster than the input could look: when
// path is found replaced (or after a restart), files beside it whose names
// extend path's, modified since (less a second for coarse timestamps),
// with content the input does not know, lived at path unseen: they are read
// from their start. With only set, only that file is looked at (it was just
// created or renamed there: since does not apply).
func (in *Input) adoptRotated(path string, since time.Time, only ...string) {
	var keep func(st *unix.Stat_t) bool
	name := ""
	if len(only) > 0 {
		name = only[0]
	} else {
		if since.IsZero() {
			return
		}
		keep = func(st *unix.Stat_t) bool {
			// mtime only: renames (logrotate shifting app.log.1 to
			// app.log.2) change ctime, and old rotated files are not new.
			// gzip gives its output the input's mtime.
			return st.Mtim.Nano() >= since.Add(-time.Second).UnixNano()
		}
	}
	var k *knowledge
	in.rotatedSiblings(path, name, keep, func(s *sibling) bool {
		if k == nil {
			k = in.knowledgeOf(path)
		}
		from, ok := in.unknown(s, k)
		if !ok {
			s.close()
			return true
		}
		if in.adoptGone(path, s, from) {
			if from == 0 {
				in.mu.Lock()
				in.adoptions[path] = append(in.adoptions[path], time.Now())
				in.mu.Unlock()
			}
			in.m.rotations.WithLabelValues(rotRename).Inc()
			in.log.Info("found a rotated file the input had not read; reading it", "path", s.full, "from_offset", from, "rotated_from", path)
		}
		return true
	})
}

// adoptGone tracks s, a file no longer at path (rotated away), to be read
// from resume to its end. False (s closed) when the file is tracked
// already.
func (in *Input) adoptGone(path string, s *sibling, resume int64) bool {
	f := &tracked{tagPath: path, id: s.id, gone: true, resume: resume, input: in,
		size: s.st.Size, mtime: s.st.Mtim.Nano(), z: s.z}
	if s.z != nil {
		f.size = -1
	}
	f.win.prepare()
	f.lastGrow.Store(time.Now().UnixNano())
	in.mu.Lock()
	if g, known := in.byID[s.id]; known && g.removed {
		in.retire(g)
	} else if known {
		in.mu.Unlock()
		s.close()
		return false
	}
	in.byID[s.id] = f // claimed; in.all (and so reading) after begin
	in.setFD(f, s.fd)
	in.mu.Unlock()
	in.begin(f, make([]byte, checkpoint.SignatureMax))
	in.mu.Lock()
	in.all[f] = struct{}{}
	in.found = append(in.found, f)
	in.mu.Unlock()
	return true
}

// copyCheck is content truncated away (copytruncate) whose copy was not
// found when the truncation was noticed: found later, or after a restart
// among the files changed since, the copy is read from off.
type copyCheck struct {
	path string // the file truncated
	sig  checkpoint.Signature
	off  int64
	at   time.Time
}

const maxCopyChecks = 64

// adoptCopy follows a copytruncate rotation. When path was truncated after
// off bytes of its previous content had been read, the rest of that content
// exists only in the copy the rotation made (app.log.1, or app.log.1.gz): a
// file beside path whose name extends path's and whose first bytes match sig
// (the previous content's signature). It is read from off to its end, like
// a renamed file, so the lines written between the last read and the copy
// are not lost (upstream Logtail loses them). A copy no longer than off was
// read entirely: it is recorded as such, so that a restart does not read it
// again. A copy not found, or found by discovery itself, is recorded in
// in.copies with off for when it is judged (judgeCopy, or a restart).
func (in *Input) adoptCopy(path string, sig checkpoint.Signature, off int64) {
	if sig.Size == 0 || off <= 0 {
		return
	}
	found := false
	in.rotatedSiblings(path, "", nil, func(s *sibling) bool {
		if !sig.Matches(s.prefix) {
			s.close()
			return true
		}
		in.mu.Lock()
		g, known := in.byID[s.id]
		tracked := known && !g.removed
		in.mu.Unlock()
		if tracked {
			// Found by discovery (a filePattern that matches copies):
			// judgeCopy starts it at the offset recorded below.
			s.close()
			return true
		}
		found = true
		if s.z == nil && s.st.Size <= off {
			in.store.Put(checkpoint.Entry{Config: in.cfg.Name, Path: path, File: s.id, Sig: checkpoint.Sign(s.prefix),
				Offset: s.st.Size, Size: s.st.Size, Done: true})
			s.close()
			return false
		}
		if in.adoptGone(path, s, off) {
			in.log.Info("truncated file: reading the rest of its previous content from the copy", "path", path, "copy", s.full, "offset", off)
		}
		return false
	})
	if found {
		return
	}
	in.mu.Lock()
	if len(in.copies) >= maxCopyChecks {
		in.copies = in.copies[1:]
	}
	in.copies = append(in.copies, copyCheck{path: path, sig: sig, off: off, at: time.Now()})
	in.mu.Unlock()
}

// adoptCompressedCopy resumes an orphan entry (its file not found after a
// restart) in a compressed copy of the file: rotated, compressed and the
// original deleted while the agent was down. It reports whether it did.
func (in *Input) adoptCompressedCopy(e checkpoint.Entry) bool {
	if e.Sig.Size == 0 {
		return false
	}
	adopted := false
	in.rotatedSiblings(e.Path, "", func(*unix.Stat_t) bool { return true }, func(s *sibling) bool {
		if s.z == nil || !e.Sig.Matches(s.prefix) {
			s.close()
			return true
		}
		in.store.Delete(in.cfg.Name, e.File)
		if in.adoptGone(e.Path, s, e.Offset) {
			adopted = true
			in.log.Info("resuming a file rotated and compressed while the agent was down", "path", e.Path, "copy", s.full, "offset", e.Offset)
		}
		return false
	})
	return adopted
}

// staleEntry returns the checkpoint entry saved for file id whose signature
// does not match the file any more: the file was truncated or rewritten in
// place since (copytruncate while the agent was down).
func (in *Input) staleEntry(id checkpoint.FileID) (checkpoint.Entry, bool) {
	for _, e := range in.store.Entries(in.cfg.Name) {
		if e.File == id || (in.cfg.IgnoreDevice && e.File.Inode == id.Inode) {
			return e, true
		}
	}
	return checkpoint.Entry{}, false
}

// rotationOf returns the path whose rotated file full is named after
// (app.log for app.log.1 or app.log-2026.gz; app.log.1 for app.log.1.gz
// when the pattern matches app.log.1): the longest name that starts full's
// name, less a compression suffix, and is a tracked path, recently was one,
// or matches the config; "" when there is none.
func (in *Input) rotationOf(full string) string {
	dir, base := filepath.Split(full)
	stem := base
	if c := compression(base); c != nil {
		stem = strings.TrimSuffix(base, c.suffix)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := len(stem); i > 0; i-- {
		name := stem[:i]
		if name == base {
			continue // the file itself
		}
		p := dir + name
		if _, ok := in.byPath[p]; ok {
			return p
		}
		if _, ok := in.pathGone[p]; ok {
			return p
		}
		if in.matches(name, p) {
			return p
		}
	}
	return ""
}

// recheckSiblings looks again at compressed siblings that were still being
// written.
func (in *Input) recheckSiblings(now time.Time) {
	in.mu.Lock()
	var list []string
	for p, at := range in.recheck {
		if now.Sub(at) > recheckFor {
			delete(in.recheck, p)
			continue
		}
		list = append(list, p)
	}
	in.mu.Unlock()
	for _, full := range list {
		if p := in.rotationOf(full); p != "" {
			in.adoptRotated(p, time.Time{}, full)
		}
	}
}

// warnUnreadable says once per file that a compressed rotated file cannot
// be read.
func (in *Input) warnUnreadable(path, suffix string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.unreadable == nil {
		in.unreadable = make(map[string]bool)
	}
	if in.unreadable[path] || len(in.unreadable) > 1000 {
		return
	}
	in.unreadable[path] = true
	in.log.Warn("a rotated file is compressed in a format the agent cannot read; if it holds lines the agent did not read before compression, they are not collected",
		"path", path, "format", suffix)
}
