package file

import (
	"bytes"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicelog/sluice/agent/checkpoint"
)

// Copies of files the input reads. A copytruncate rotation copies app.log
// to app.log.1 and truncates app.log; when filePattern matches both
// (app.log*), app.log.1 is a new file to discovery, and reading it from
// its start would repeat everything read from app.log. So a file that
// appears after start is judged by its first KiB before it is read
// (content, not inode: the copy is a new inode), against files whose name
// its own extends, as rotations name copies (app.log.1 and
// app.log-20260101 against app.log; a file that merely starts with the same
// bytes under another name is read whole):
//
//   - the copy of content truncated away whose reader recorded where it
//     stopped (copyCheck): read from there;
//   - the same first bytes as a file of its directory being read, or as
//     that file's checkpoint signature (truncated, its reader not there
//     yet): not read yet — the source's reader records where it stopped
//     when it sees the truncation. If the source is not truncated within
//     copyWait (a copy without truncation), or its reader takes longer
//     than truncatedWait to get there (waiting for acknowledgements from a
//     slow server), the copy is read from the source's acknowledged offset;
//   - a copy of content the checkpoint knows (a file read to its end): read
//     from that entry's offset;
//   - anything else: read from its start.
//
// Every start chosen is at most where the source's reader had its lines
// acknowledged, so for a real copy a wrong guess repeats lines and never
// skips any. A copy is judged on a full signature; a shorter file (a copy
// still being written, perhaps) is judged again until judgeFor has passed.
const (
	judgeFor      = 2 * time.Second
	copyWait      = 5 * time.Second
	truncatedWait = time.Minute
)

// judgeCopy decides where a file new since start is read from; false when
// it must not be read yet.
func (w *worker) judgeCopy(f *tracked) bool {
	in := w.in
	n, _ := f.fd.ReadAt(w.sigBuf[:checkpoint.SignatureMax], 0)
	if n == 0 {
		return false // nothing to judge or read yet
	}
	prefix := w.sigBuf[:n]
	waited := time.Since(f.judgeSince)
	if n < checkpoint.SignatureMax && waited < judgeFor && !f.gone {
		return false
	}
	switch c := in.copyOf(f, prefix); {
	case c.truncated:
		f.judge = false
		w.startAt(f, c.off, "it is a copy of content truncated away")
		return true
	case c.src != "":
		limit := copyWait
		if !c.live {
			limit = truncatedWait
		}
		if waited < limit && !f.gone {
			if !f.waitLogged {
				f.waitLogged = true
				in.log.Debug("new file is a copy of a file being read; waiting for that file's truncation",
					"path", f.tagPath, "source", c.src)
			}
			return false
		}
		f.judge = false
		w.startAt(f, c.off, "it is a copy of a file being read")
		return true
	}
	f.judge = false
	if off, ok := in.knownCopy(f, prefix); ok {
		w.startAt(f, off, "it is a copy of a file read before")
	}
	return true
}

// copyJudgement is what copyOf found.
type copyJudgement struct {
	truncated bool   // a copy of content truncated away, read from off
	src       string // else, when set: a copy of this file being read
	live      bool   // src holds the copied content still (not truncated yet)
	off       int64
}

// copyOf looks, under one hold of in.mu, for what f (starting with prefix)
// copies: content truncated away whose reader recorded where it stopped
// (in.copies), else a file of f's directory being read that starts with
// prefix now, or did when its signature was taken (truncated since, its
// reader not there yet; off is then that file's acknowledged offset).
// One hold matters: a reader that notices the truncation records in
// in.copies (under in.mu) before it forgets the old signature, so f is
// always found by one test or the other. Looked at one after the other,
// both could miss — the copy was then read from its start (every line of
// the rotation twice, 1 run in ~20 of
// TestCopyTruncateWithPatternMatchingCopiesReadsEachLineOnce).
//
// Only a name that extends the other's (app.log.1, app.log-20260101 for
// app.log), as rotations name copies, is taken for a copy: another file
// that merely starts with the same bytes must be read whole.
func (in *Input) copyOf(f *tracked, prefix []byte) (c copyJudgement) {
	dir, base := filepath.Split(f.tagPath)
	buf := make([]byte, len(prefix))
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, cc := range in.copies {
		if cc.sig.Size > 0 && int(cc.sig.Size) == len(prefix) && cc.sig.Matches(prefix) && namedAfter(base, dir, cc.path) {
			in.copies = append(in.copies[:i], in.copies[i+1:]...)
			return copyJudgement{truncated: true, off: cc.off}
		}
	}
	for g := range in.all {
		if g == f || g.fd == nil || g.z != nil || g.discovering || !namedAfter(base, dir, g.tagPath) {
			continue
		}
		g.win.mu.Lock()
		sig, committed := g.win.entry.Sig, g.win.committed
		g.win.mu.Unlock()
		sigMatch := sig.Size > 0 && int(sig.Size) == len(prefix) && sig.Matches(prefix)
		// Read under in.mu: a descriptor is only closed under it.
		k, _ := g.fd.ReadAt(buf, 0)
		live := k == len(prefix) && bytes.Equal(buf, prefix)
		if !sigMatch && !live {
			continue
		}
		c.live = c.live || live
		if sigMatch && c.src == "" {
			c.off = committed
		}
		c.src = g.tagPath
	}
	return c
}

// namedAfter reports whether the file named base in dir has a name that
// extends path's, as a rotated copy of path is named.
func namedAfter(base, dir, path string) bool {
	pdir, pbase := filepath.Split(path)
	return pdir == dir && len(base) > len(pbase) && strings.HasPrefix(base, pbase)
}

// knownCopy returns where to start reading f when its first bytes are
// those of another file's checkpoint entry (a file read before).
func (in *Input) knownCopy(f *tracked, prefix []byte) (int64, bool) {
	dir, base := filepath.Split(f.tagPath)
	for _, e := range in.store.Entries(in.cfg.Name) {
		if e.File != f.id && e.Sig.Size > 0 && int(e.Sig.Size) == len(prefix) && e.Sig.Matches(prefix) && e.Offset > 0 &&
			namedAfter(base, dir, e.Path) {
			return e.Offset, true
		}
	}
	return 0, false
}

// startAt makes off (at most the file's size) where reading f starts, and
// records it.
func (w *worker) startAt(f *tracked, off int64, why string) {
	if off <= 0 {
		return
	}
	if st, err := f.fd.Stat(); err == nil && off > st.Size() {
		off = st.Size()
	}
	w.rewind(f, off) // saves off
	w.in.log.Info("new file holds content already read; reading it from the offset where that content ended",
		"path", f.tagPath, "offset", off, "reason", why)
}
