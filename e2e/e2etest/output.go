package e2etest

import (
	"bufio"
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/mocklog"
)

// RecordStart begins every record (one JSON object a line) of the agent's
// file output.
var RecordStart = []byte(`{"__time__":`)

// ScanOutput calls fn with every record of the agent's file output at path
// (none when the file does not exist yet). A line torn by SIGKILL in the
// middle of a write is followed by the next run's first record on the same
// line: the two are passed to fn apart, the torn one first, so fn sees
// half a JSON object it may skip. rec is only valid during the call.
func ScanOutput(t testing.TB, path string, fn func(rec []byte)) {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return
	}
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		for len(line) > 1 {
			i := bytes.Index(line[1:], RecordStart)
			if i < 0 {
				break
			}
			fn(line[:i+1])
			line = line[i+1:]
		}
		fn(line)
	}
	require.NoError(t, sc.Err())
}

// TrackOutput feeds the sequence number of every record in the file output
// at path (torn ones included) to a fresh tracker.
func TrackOutput(t testing.TB, path string) *mocklog.SeqTracker {
	t.Helper()
	tr := &mocklog.SeqTracker{}
	ScanOutput(t, path, func(rec []byte) { tr.AddLine(rec) })
	return tr
}
