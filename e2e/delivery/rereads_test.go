package delivery

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// A crash may repeat what the agent read but had not yet recorded in its
// checkpoint file; it must never repeat what the file on disk already
// recorded as delivered when the agent started (a file read again from 0, a
// rotated file read twice). That is checked exactly, whatever the machine's
// load: at every kill the checkpoint file is read (the agent is dead, so it
// is stable) and turned into the sequence numbers it covers, by reading the
// log files themselves at the recorded offsets; each agent run tags its
// packages with its own __pack_id__ prefix (logged at start), so the server
// tells which run sent each stored line.

var (
	seqRE    = regexp.MustCompile(`seq=(\d+)`)
	prefixRE = regexp.MustCompile(`pack_id_prefix=([0-9A-F]+)`)
)

// seqSpan is an inclusive range of sequence numbers.
type seqSpan struct{ lo, hi uint64 }

// agentRun is one agent process: the __pack_id__ prefixes it logged and the
// spans its checkpoint file covered when it started.
type agentRun struct {
	prefixes []string
	covered  []seqSpan
}

// runTracker follows the agent's log across restarts.
type runTracker struct {
	e      *env
	logOff int64
	runs   []agentRun
	next   []seqSpan // covered by the checkpoint file when the next run starts
}

// ended records the run that just stopped (killed or stopped): its
// prefixes, read from the agent log since the previous call, and the
// checkpoint file as that run left it, which the next run starts from.
func (rt *runTracker) ended(t *testing.T, logDir string) {
	t.Helper()
	b, err := os.ReadFile(rt.e.logPath("agent"))
	require.NoError(t, err)
	var prefixes []string
	for _, m := range prefixRE.FindAllSubmatch(b[rt.logOff:], -1) {
		prefixes = append(prefixes, string(m[1]))
	}
	rt.logOff = int64(len(b))
	rt.runs = append(rt.runs, agentRun{prefixes: prefixes, covered: rt.next})
	rt.next, err = checkpointedSeqs(filepath.Join(rt.e.dir, "agent/state/checkpoint"), logDir)
	require.NoError(t, err)
}

// check asserts that no run sent a line its starting checkpoint covered,
// and logs what each run's checkpoint covered.
func (rt *runTracker) check(t *testing.T) {
	t.Helper()
	var bad []string
	for i, r := range rt.runs {
		if len(r.prefixes) == 0 || len(r.covered) == 0 {
			continue
		}
		var ps, spans []string
		for _, p := range r.prefixes {
			ps = append(ps, fmt.Sprintf(`p like '%s-%%'`, p))
		}
		for _, s := range r.covered {
			spans = append(spans, fmt.Sprintf("s between %d and %d", s.lo, s.hi))
		}
		row, err := rt.e.one(`* | select count(1) as n, min(s) as lo, max(s) as hi from (select cast(regexp_extract(request_uri, 'seq=(\d+)', 1) as bigint) as s, ` +
			`"__tag__:__pack_id__" as p from log) where (` + strings.Join(ps, " or ") + `) and (` + strings.Join(spans, " or ") + `)`)
		require.NoError(t, err)
		if row["n"] != "0" {
			bad = append(bad, fmt.Sprintf("run %d (%s) sent %s lines (%s-%s) its checkpoint covered (%v)", i+1,
				strings.Join(r.prefixes, ","), row["n"], row["lo"], row["hi"], r.covered))
		}
	}
	t.Logf("%d agent runs checked against their starting checkpoint", len(rt.runs))
	require.Empty(t, bad, "lines re-sent although the checkpoint on disk recorded them as delivered")
}

// checkpointedSeqs reads the agent's checkpoint file and returns the
// sequence numbers it records as delivered, merged into spans: for each
// file entry found in logDir (by device and inode), the lines before its
// offset (all of it when done). Entries whose file is gone are skipped:
// that can only make the check weaker, never wrong.
func checkpointedSeqs(cpPath, logDir string) ([]seqSpan, error) {
	b, err := os.ReadFile(cpPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cp struct {
		Files []struct {
			Dev, Inode uint64
			Offset     int64
			Done       bool
		} `json:"files"`
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", cpPath, err)
	}
	type devIno struct{ dev, ino uint64 }
	paths := map[devIno]string{}
	ents, err := os.ReadDir(logDir)
	if err != nil {
		return nil, err
	}
	for _, de := range ents {
		p := filepath.Join(logDir, de.Name())
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			paths[devIno{uint64(st.Dev), st.Ino}] = p
		}
	}
	var spans []seqSpan
	for _, f := range cp.Files {
		p, ok := paths[devIno{f.Dev, f.Inode}]
		if !ok || (f.Offset == 0 && !f.Done) {
			continue
		}
		s, ok, err := fileSpan(p, f.Inode, f.Offset, f.Done)
		if err != nil {
			return nil, err
		}
		if ok {
			spans = append(spans, s)
		}
	}
	slices.SortFunc(spans, func(a, b seqSpan) int { return cmp.Compare(a.lo, b.lo) })
	var merged []seqSpan
	for _, s := range spans {
		if n := len(merged); n > 0 && s.lo <= merged[n-1].hi+1 {
			merged[n-1].hi = max(merged[n-1].hi, s.hi)
			continue
		}
		merged = append(merged, s)
	}
	return merged, nil
}

// fileSpan is the span of the lines of path before offset (before its end
// when done). ok is false when the file at path is no longer that inode (a
// rotation in between) or holds no complete line before offset.
func fileSpan(path string, ino uint64, offset int64, done bool) (seqSpan, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return seqSpan{}, false, nil
	}
	if err != nil {
		return seqSpan{}, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return seqSpan{}, false, err
	}
	if st.Sys().(*syscall.Stat_t).Ino != ino {
		return seqSpan{}, false, nil
	}
	end := offset
	if done || end > st.Size() {
		end = st.Size()
	}
	head := make([]byte, min(4096, end))
	if _, err := f.ReadAt(head, 0); err != nil {
		return seqSpan{}, false, err
	}
	tail := make([]byte, min(4096, end))
	if _, err := f.ReadAt(tail, end-int64(len(tail))); err != nil {
		return seqSpan{}, false, err
	}
	// The last complete line before end: the offset is a line end, but be
	// conservative if it is not.
	i := bytes.LastIndexByte(tail, '\n')
	if i < 0 {
		return seqSpan{}, false, nil
	}
	tail = tail[:i]
	last := tail[bytes.LastIndexByte(tail, '\n')+1:]
	lo, ok1 := lineSeq(head)
	hi, ok2 := lineSeq(last)
	if !ok1 || !ok2 || hi < lo {
		return seqSpan{}, false, nil
	}
	return seqSpan{lo, hi}, true, nil
}

// lineSeq is the sequence number of the first line in b.
func lineSeq(b []byte) (uint64, bool) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	m := seqRE.FindSubmatch(b)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(string(m[1]), 10, 64)
	return n, err == nil
}
