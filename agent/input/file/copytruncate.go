package file

import (
	"os"

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
	buf := make([]byte, checkpoint.SignatureMax)
	in.rotatedSiblings(path, func(st *unix.Stat_t) bool { return st.Size > off },
		func(full string, fd *os.File, st *unix.Stat_t) bool {
			n, _ := fd.ReadAt(buf[:sig.Size], 0)
			if n < int(sig.Size) || !sig.Matches(buf[:n]) {
				_ = fd.Close()
				return true
			}
			if in.adoptGone(path, fd, st, off) {
				in.log.Info("truncated file: reading the rest of its previous content from the copy", "path", path, "copy", full, "offset", off)
			}
			return false
		})
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
