package shardlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
)

// group returns a one-log group whose only value is v.
func group(v string) protocol.LogGroup {
	return protocol.LogGroup{Topic: "t", Source: "10.0.0.1", LogTags: []protocol.LogTag{{Key: "__pack_id__", Value: "ABC-1"}},
		Logs: []protocol.Log{{Time: 1700000000, Contents: []protocol.LogContent{{Key: "n", Value: v}}}}}
}

// writer appends numbered groups as the store would: one record per
// write, WAL positions increasing.
type writer struct {
	t      *testing.T
	l      *Log
	walEnd int64
	n      int
	recv   time.Time
}

// write appends one record of k groups to shard sh and returns the first
// group's cursor.
func (w *writer) write(sh, k int) int64 {
	w.t.Helper()
	var gs []protocol.LogGroup
	for range k {
		gs = append(gs, group(fmt.Sprint(w.n)))
		w.n++
	}
	rec := AppendRecord(nil, 1, sh, w.recv.UnixNano(), gs)
	w.walEnd += int64(len(rec))
	es := []Entry{{Key: Key{1, sh}, Record: rec, Groups: k, WALEnd: w.walEnd}}
	require.NoError(w.t, w.l.Append(es))
	return es[0].First
}

// values decodes a Read's data into the "n" value of each group's log.
func values(t *testing.T, b Batch) []string {
	t.Helper()
	var gl protocol.LogGroupList
	require.NoError(t, gl.Unmarshal(b.Data))
	require.Len(t, gl.LogGroups, b.Groups)
	var out []string
	for _, g := range gl.LogGroups {
		require.Equal(t, "t", g.Topic)
		require.Equal(t, "ABC-1", g.LogTags[0].Value)
		out = append(out, g.Logs[0].Contents[0].Value)
	}
	return out
}

func seq(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

func open(t *testing.T, dir string, cfg Config) *Log {
	t.Helper()
	cfg.Dir = dir
	l, err := Open(cfg, Settings{})
	require.NoError(t, err)
	return l
}

func TestAppendReadAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Config{FileBytes: 1 << 10, IndexCache: 2})
	require.NoError(t, l.Recover(0))
	w := &writer{t: t, l: l, recv: time.Unix(1700000000, 0)}
	var firsts []int64
	for i := range 40 {
		firsts = append(firsts, w.write(0, 1+i%3))
	}
	require.Equal(t, int64(0), firsts[0])
	require.Equal(t, int64(1), firsts[1])
	require.Equal(t, int64(3), firsts[2])
	begin, end := l.Bounds(Key{1, 0})
	require.Equal(t, int64(0), begin)
	require.Equal(t, int64(w.n), end)
	files, _ := filepath.Glob(filepath.Join(dir, "ls1", "0", "*.log"))
	require.Greater(t, len(files), 5, "small FileBytes must roll files")

	// Everything, in pieces of 7 groups (crossing records and files).
	var got []string
	for c := begin; c < end; {
		b, err := l.Read(Key{1, 0}, c, -1, 7, 1<<20, nil)
		require.NoError(t, err)
		require.LessOrEqual(t, b.Groups, 7)
		require.Positive(t, b.Groups)
		got = append(got, values(t, b)...)
		require.Equal(t, c+int64(b.Groups), b.Next)
		c = b.Next
	}
	require.Equal(t, seq(0, w.n), got)

	// An end cursor and a byte limit (at least one group is returned).
	b, err := l.Read(Key{1, 0}, 5, 9, 100, 1<<20, nil)
	require.NoError(t, err)
	require.Equal(t, seq(5, 9), values(t, b))
	b, err = l.Read(Key{1, 0}, 5, -1, 100, 1, nil)
	require.NoError(t, err)
	require.Equal(t, seq(5, 6), values(t, b))

	// At the end: nothing, same cursor. Past it or before 0: out of range.
	b, err = l.Read(Key{1, 0}, end, -1, 100, 1<<20, nil)
	require.NoError(t, err)
	require.Zero(t, b.Groups)
	require.Equal(t, end, b.Next)
	_, err = l.Read(Key{1, 0}, end+1, -1, 100, 1<<20, nil)
	require.ErrorIs(t, err, ErrOutOfRange)
	_, err = l.Read(Key{1, 0}, -1, -1, 100, 1<<20, nil)
	require.ErrorIs(t, err, ErrOutOfRange)

	// A shard never written: empty at 0.
	b, err = l.Read(Key{1, 1}, 0, -1, 100, 1<<20, nil)
	require.NoError(t, err)
	require.Zero(t, b.Groups)
	require.NoError(t, l.Close())

	// Reopened: same data, appends continue the cursors.
	l = open(t, dir, Config{FileBytes: 1 << 10})
	require.NoError(t, l.Recover(w.walEnd))
	w.l = l
	require.Equal(t, end, w.write(0, 2))
	b, err = l.Read(Key{1, 0}, 0, -1, 1000, 1<<20, nil)
	require.NoError(t, err)
	require.Equal(t, seq(0, w.n), values(t, b))
	require.NoError(t, l.Close())
}

func TestRecoverCutsBackToTheLoadedPosition(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Config{FileBytes: 600})
	require.NoError(t, l.Recover(0))
	w := &writer{t: t, l: l, recv: time.Now()}
	var ends []int64
	for range 12 {
		w.write(0, 2)
		ends = append(ends, w.walEnd)
	}
	require.NoError(t, l.Sync())
	// A crash: no Close. The store had loaded up to the 5th write; the
	// rest is in its WAL and will be replayed.
	l2 := open(t, dir, Config{FileBytes: 600})
	require.NoError(t, l2.Recover(ends[4]))
	_, end := l2.Bounds(Key{1, 0})
	require.Equal(t, int64(10), end)
	// Replaying the WAL gives the cut writes the same cursors.
	w2 := &writer{t: t, l: l2, recv: time.Now(), walEnd: ends[4], n: 10}
	require.Equal(t, int64(10), w2.write(0, 2))
	b, err := l2.Read(Key{1, 0}, 0, -1, 1000, 1<<20, nil)
	require.NoError(t, err)
	require.Equal(t, seq(0, 12), values(t, b))
	require.NoError(t, l2.Close())

	// A torn tail (garbage after the last record) is cut too, even
	// within the loaded position.
	files, _ := filepath.Glob(filepath.Join(dir, "ls1", "0", "*.log"))
	last := files[len(files)-1]
	f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{0x20, 0, 0, 0, 1, 2, 3})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	l3 := open(t, dir, Config{FileBytes: 600})
	require.NoError(t, l3.Recover(1<<40))
	_, end = l3.Bounds(Key{1, 0})
	require.Equal(t, int64(12), end)
	w3 := &writer{t: t, l: l3, recv: time.Now(), walEnd: w2.walEnd, n: 12}
	require.Equal(t, int64(12), w3.write(0, 1))
	b, err = l3.Read(Key{1, 0}, 0, -1, 1000, 1<<20, nil)
	require.NoError(t, err)
	require.Equal(t, seq(0, 13), values(t, b))

	// Nothing loaded at all: every file goes, cursors restart at the
	// first file's.
	require.NoError(t, l3.Close())
	l4 := open(t, dir, Config{})
	require.NoError(t, l4.Recover(0))
	begin, end := l4.Bounds(Key{1, 0})
	require.Equal(t, [2]int64{0, 0}, [2]int64{begin, end})
	require.NoError(t, l4.Close())
}

func TestCorruptRecordIsReported(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Config{})
	require.NoError(t, l.Recover(0))
	w := &writer{t: t, l: l, recv: time.Now()}
	w.write(0, 3)
	files, _ := filepath.Glob(filepath.Join(dir, "ls1", "0", "*.log"))
	data, err := os.ReadFile(files[0])
	require.NoError(t, err)
	data[HeaderSize+20] ^= 0xff // inside the payload
	require.NoError(t, os.WriteFile(files[0], data, 0o640))
	_, err = l.Read(Key{1, 0}, 0, -1, 10, 1<<20, nil)
	require.ErrorIs(t, err, ErrCorrupt)
	require.NoError(t, l.Close())
}

func TestSeekAndReceiveTime(t *testing.T) {
	l := open(t, t.TempDir(), Config{FileBytes: 400})
	require.NoError(t, l.Recover(0))
	base := time.Unix(1700000000, 0)
	w := &writer{t: t, l: l}
	for i := range 20 {
		w.recv = base.Add(time.Duration(i) * time.Minute)
		w.write(0, 1)
	}
	k := Key{1, 0}
	for _, c := range []struct {
		at   time.Time
		want int64
	}{
		{base.Add(-time.Hour), 0},
		{base, 0},
		{base.Add(30 * time.Second), 1},
		{base.Add(7 * time.Minute), 7},
		{base.Add(19 * time.Minute), 19},
		{base.Add(20 * time.Minute), 20}, // after everything: the end
	} {
		got, err := l.Seek(k, c.at.UnixNano())
		require.NoError(t, err)
		require.Equal(t, c.want, got, "seek %v", c.at)
	}
	for _, c := range []int64{0, 7, 19} {
		ns, err := l.ReceiveTime(k, c)
		require.NoError(t, err)
		require.Equal(t, base.Add(time.Duration(c)*time.Minute).UnixNano(), ns)
	}
	ns, err := l.ReceiveTime(k, 20) // the end cursor: the last group's time
	require.NoError(t, err)
	require.Equal(t, base.Add(19*time.Minute).UnixNano(), ns)
	_, err = l.ReceiveTime(k, 21)
	require.ErrorIs(t, err, ErrOutOfRange)
	require.NoError(t, l.Close())
}

func TestRetainAndDrop(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Config{FileAge: time.Hour, IndexCache: 1})
	require.NoError(t, l.Recover(0))
	base := time.Unix(1700000000, 0)
	w := &writer{t: t, l: l}
	for i := range 10 {
		w.recv = base.Add(time.Duration(i) * 90 * time.Minute) // a new file each time
		w.write(0, 1)
	}
	w.write(1, 1)
	k := Key{1, 0}
	n, err := l.Retain(1, base.Add(5*90*time.Minute).UnixNano())
	require.NoError(t, err)
	require.Equal(t, 5, n)
	begin, end := l.Bounds(k)
	require.Equal(t, [2]int64{5, 10}, [2]int64{begin, end})
	_, err = l.Read(k, 4, -1, 10, 1<<20, nil)
	require.ErrorIs(t, err, ErrOutOfRange)
	b, err := l.Read(k, 5, -1, 10, 1<<20, nil)
	require.NoError(t, err)
	require.Equal(t, seq(5, 10), values(t, b))
	// The last file stays, however old: the cursors continue after it.
	_, err = l.Retain(1, base.Add(100*time.Hour).UnixNano())
	require.NoError(t, err)
	begin, end = l.Bounds(k)
	require.Equal(t, [2]int64{9, 10}, [2]int64{begin, end})

	require.NoError(t, l.Drop(1))
	_, err = os.Stat(filepath.Join(dir, "ls1"))
	require.True(t, errors.Is(err, os.ErrNotExist))
	require.Equal(t, int64(-1), func() int64 {
		es := []Entry{{Key: k, Record: AppendRecord(nil, 1, 0, 0, []protocol.LogGroup{group("x")}), Groups: 1, WALEnd: 1}}
		require.NoError(t, l.Append(es))
		return es[0].First
	}(), "appends to a dropped logstore are ignored")
	_, err = os.Stat(filepath.Join(dir, "ls1"))
	require.True(t, errors.Is(err, os.ErrNotExist))
	require.NoError(t, l.Close())
}

// TestConcurrentReadsWhileAppending runs readers that follow the shard
// while it is appended to and rolled (run with -race).
func TestConcurrentReadsWhileAppending(t *testing.T) {
	l := open(t, t.TempDir(), Config{FileBytes: 2 << 10, IndexCache: 1})
	require.NoError(t, l.Recover(0))
	const total = 600
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got []string
			var c int64
			for len(got) < total {
				b, err := l.Read(Key{1, 0}, c, -1, 1+r*5, 1<<20, nil)
				if err != nil {
					errs <- err
					return
				}
				var gl protocol.LogGroupList
				if err := gl.Unmarshal(b.Data); err != nil {
					errs <- err
					return
				}
				for _, g := range gl.LogGroups {
					got = append(got, g.Logs[0].Contents[0].Value)
				}
				c = b.Next
			}
			for i, v := range got {
				if v != fmt.Sprint(i) {
					errs <- fmt.Errorf("reader %d: group %d is %q", r, i, v)
					return
				}
			}
		}()
	}
	w := &writer{t: t, l: l, recv: time.Now()}
	for w.n < total {
		w.write(0, 1+w.n%2)
		if w.n%50 == 0 {
			require.NoError(t, l.Sync())
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())
}
