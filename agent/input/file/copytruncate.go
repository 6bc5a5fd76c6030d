package file

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluicelog/sluice/agent/checkpoint"
)

// adoptCopy follows a copytruncate rotation. When path was truncated after
// off bytes of its previous content had been read, the rest of that content
// exists only in the copy the rotation made (app.log.1): a file beside path
// whose name extends path's, whose first bytes match sig (the previous
// content's signature) and that is longer than off. It is read from off to
// its end, like a renamed file, so the lines written between the last read
// and the copy are not lost. Upstream Logtail loses them.
func (in *Input) adoptCopy(path string, sig checkpoint.Signature, off int64) {
	if sig.Size == 0 || off <= 0 {
		return
	}
	dir, base := filepath.Split(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	buf := make([]byte, checkpoint.SignatureMax)
	var st unix.Stat_t
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, base) || name == base || !e.Type().IsRegular() ||
			slices.ContainsFunc(compressedSuffixes, func(s string) bool { return strings.HasSuffix(name, s) }) {
			continue
		}
		full := filepath.Join(dir, name)
		if unix.Stat(full, &st) != nil || st.Size <= off {
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
			_ = fd.Close()
			continue
		}
		n, _ := fd.ReadAt(buf[:sig.Size], 0)
		if n < int(sig.Size) || !sig.Matches(buf[:n]) {
			_ = fd.Close()
			continue
		}
		f := &tracked{tagPath: path, id: id, gone: true, resume: off, input: in, fd: fd, size: fst.Size, mtime: fst.Mtim.Nano()}
		f.win.wake = make(chan struct{}, 1)
		f.lastGrow.Store(time.Now().UnixNano())
		in.mu.Lock()
		if _, known := in.byID[id]; known { // adopted meanwhile by a discovery pass
			in.mu.Unlock()
			_ = fd.Close()
			return
		}
		in.open.Add(1)
		in.m.openFiles.Inc()
		in.byID[id] = f
		in.all[f] = struct{}{}
		in.mu.Unlock()
		in.log.Info("truncated file: reading the rest of its previous content from the copy", "path", path, "copy", full, "offset", off)
		return
	}
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
