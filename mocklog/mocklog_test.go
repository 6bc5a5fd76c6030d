package mocklog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var fixedNow = func() time.Time { return time.Date(2026, 11, 23, 10, 47, 8, 123456789, time.UTC) }

func generate(t *testing.T, opts Options) ([]byte, Stats) {
	t.Helper()
	var buf bytes.Buffer
	opts.Writer = &buf
	if opts.Now == nil {
		opts.Now = fixedNow
	}
	g, err := New(opts)
	require.NoError(t, err)
	require.NoError(t, g.Run(context.Background()))
	return buf.Bytes(), g.Stats()
}

// seqs returns the sequence numbers of data's lines in order and the number
// of lines without one.
func seqs(t *testing.T, data []byte) (got []uint64, without int) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if s, ok := ParseSeq(sc.Bytes()); ok {
			got = append(got, s)
		} else {
			without++
		}
	}
	require.NoError(t, sc.Err())
	return got, without
}

func requireSeqRange(t *testing.T, got []uint64, first, n uint64) {
	t.Helper()
	require.Len(t, got, int(n))
	for i, s := range got {
		if s != first+uint64(i) {
			t.Fatalf("event %d has seq %d, want %d", i, s, first+uint64(i))
		}
	}
}

func TestNginxLinesParse(t *testing.T) {
	data, st := generate(t, Options{LogType: LogTypeNginx, TotalCount: 2000, FirstSeq: 1, Seed: 7})
	require.EqualValues(t, 2000, st.Events)
	require.EqualValues(t, 2000, st.Lines)
	require.EqualValues(t, len(data), st.Bytes)
	require.EqualValues(t, 2001, st.NextSeq)
	got, without := seqs(t, data)
	require.Zero(t, without)
	requireSeqRange(t, got, 1, 2000)

	re := regexp.MustCompile(`^` + NginxRegex + `$`)
	require.Equal(t, len(NginxKeys()), re.NumSubexp())
	methods, statuses, ips := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		m := re.FindStringSubmatch(line)
		require.NotNil(t, m, "nginx regex must parse %q", line)
		require.Equal(t, "23/Nov/2026:10:47:08 +0000", m[3])
		_, err := time.Parse("02/Jan/2006:15:04:05 -0700", m[3])
		require.NoError(t, err)
		require.Regexp(t, `[?&]seq=\d+$`, m[5])
		_, err = strconv.ParseFloat(m[11], 64)
		require.NoError(t, err, "request_time")
		methods[m[4]], statuses[m[7]], ips[m[1]] = true, true, true
	}
	require.GreaterOrEqual(t, len(methods), 5, "varied methods")
	require.GreaterOrEqual(t, len(statuses), 10, "varied statuses")
	require.Greater(t, len(ips), 1900, "varied client IPs")
}

func TestJSONLines(t *testing.T) {
	data, _ := generate(t, Options{LogType: LogTypeJSON, TotalCount: 500, FirstSeq: 10})
	got, without := seqs(t, data)
	require.Zero(t, without)
	requireSeqRange(t, got, 10, 500)
	for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		var v map[string]any
		require.NoError(t, json.Unmarshal(line, &v), string(line))
		require.EqualValues(t, 10+i, v["seq"])
		require.Equal(t, "2026-11-23T10:47:08.123Z", v["time"])
		require.Contains(t, []string{"INFO", "DEBUG", "WARN", "ERROR"}, v["level"])
	}
}

func TestApsaraLines(t *testing.T) {
	data, _ := generate(t, Options{LogType: LogTypeApsara, TotalCount: 300})
	got, _ := seqs(t, data)
	requireSeqRange(t, got, 0, 300)
	re := regexp.MustCompile(`^\[2026-11-23 10:47:08\.123456\]\t\[(INFO|DEBUG|WARN|ERROR)\]\t\[\d+\]\t/\S+:\d+\tseq:\d+\tmodule:\S+\tlatency_us:\d+\tmsg:[^\t]+$`)
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		require.Regexp(t, re, line)
	}
}

func TestJavaMultiline(t *testing.T) {
	data, st := generate(t, Options{LogType: LogTypeJavaMultiline, TotalCount: 1000, FirstSeq: 1, Seed: 3})
	got, without := seqs(t, data)
	requireSeqRange(t, got, 1, 1000)
	require.Greater(t, without, 500, "stack traces add continuation lines")
	require.EqualValues(t, 1000+without, st.Lines)
	begin := regexp.MustCompile(`^` + JavaBeginRegex + `$`)
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		_, hasSeq := ParseSeq([]byte(line))
		require.Equal(t, hasSeq, begin.MatchString(line), "exactly the first line of an event matches logBeginRegex: %q", line)
	}
}

func TestDeterministic(t *testing.T) {
	for _, lt := range LogTypes() {
		a, _ := generate(t, Options{LogType: lt, TotalCount: 200, Seed: 42})
		b, _ := generate(t, Options{LogType: lt, TotalCount: 200, Seed: 42})
		c, _ := generate(t, Options{LogType: lt, TotalCount: 200, Seed: 43})
		require.Equal(t, a, b, lt)
		require.NotEqual(t, a, c, lt)
	}
}

func TestSizeLimit(t *testing.T) {
	const size = 1 << 20
	data, st := generate(t, Options{LogType: LogTypeNginx, Size: size})
	require.GreaterOrEqual(t, len(data), size)
	last := bytes.LastIndexByte(data[:len(data)-1], '\n')
	require.Less(t, len(data)-size, len(data)-last, "stops at the first event boundary at or after Size")
	got, _ := seqs(t, data)
	requireSeqRange(t, got, 0, st.Events)
}

func TestNewErrors(t *testing.T) {
	_, err := New(Options{LogType: "syslog", RotateMode: "move", RotateBytes: 10, Writer: os.Stdout})
	require.EqualError(t, err, "log type \"syslog\" is unknown: use one of nginx, json, apsara, java-multiline\n"+
		"rotate mode \"move\" is unknown: use rename or copytruncate\n"+
		"rotation needs a file: set a path")
	_, err = New(Options{LogType: LogTypeJSON})
	require.EqualError(t, err, "set an output: a path, a writer (stdout/stderr) or both")
}

// readRotated returns the content of path.keep … path.1, path: oldest first.
func readRotated(t *testing.T, path string) (data []byte, files int) {
	t.Helper()
	matches, err := filepath.Glob(path + ".*")
	require.NoError(t, err)
	for i := len(matches); i >= 1; i-- {
		b, err := os.ReadFile(path + "." + strconv.Itoa(i))
		require.NoError(t, err, "rotated files are numbered without gaps")
		data = append(data, b...)
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return append(data, b...), len(matches) + 1
}

func TestRotationKeepsEverySeq(t *testing.T) {
	for _, mode := range []string{RotateRename, RotateCopyTruncate} {
		for _, lt := range []string{LogTypeNginx, LogTypeJavaMultiline} {
			t.Run(mode+"/"+lt, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "app.log")
				g, err := New(Options{LogType: lt, Path: path, RotateBytes: 16 << 10, RotateMode: mode, RotateKeep: 1000, TotalCount: 3000, FirstSeq: 1, Now: fixedNow})
				require.NoError(t, err)
				require.NoError(t, g.Run(context.Background()))
				data, files := readRotated(t, path)
				st := g.Stats()
				require.Greater(t, st.Rotations, uint64(10))
				require.EqualValues(t, st.Rotations+1, files)
				require.EqualValues(t, st.Bytes, len(data))
				got, _ := seqs(t, data)
				requireSeqRange(t, got, 1, 3000)
				for i := 1; i < files; i++ {
					b, err := os.ReadFile(path + "." + strconv.Itoa(i))
					require.NoError(t, err)
					require.GreaterOrEqual(t, len(b), 16<<10, "rotated at the size")
					require.Less(t, len(b), 16<<10+4096, "rotated right after reaching the size")
					require.Equal(t, byte('\n'), b[len(b)-1], "rotation never splits an event")
					if lt == LogTypeJavaMultiline {
						_, ok := ParseSeq(b[:bytes.IndexByte(b, '\n')])
						require.True(t, ok, "each file starts with an event's first line")
					}
				}
			})
		}
	}
}

func TestRotationKeepLimit(t *testing.T) {
	for _, mode := range []string{RotateRename, RotateCopyTruncate} {
		t.Run(mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			g, err := New(Options{LogType: LogTypeJSON, Path: path, RotateBytes: 8 << 10, RotateMode: mode, RotateKeep: 3, TotalCount: 2000, FirstSeq: 1})
			require.NoError(t, err)
			require.NoError(t, g.Run(context.Background()))
			data, files := readRotated(t, path)
			require.Equal(t, 4, files, "path plus path.1 … path.3")
			got, _ := seqs(t, data)
			require.NotEmpty(t, got)
			requireSeqRange(t, got, got[0], uint64(len(got)))
			require.EqualValues(t, 2000, got[len(got)-1], "the newest events are all there")
		})
	}
}

func TestAppendsAndRotatesOversizedExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("old line\n"), 4000), 0o644))
	g, err := New(Options{LogType: LogTypeNginx, Path: path, RotateBytes: 4096, RotateKeep: 100, TotalCount: 100})
	require.NoError(t, err)
	require.NoError(t, g.Run(context.Background()))
	data, _ := readRotated(t, path)
	require.True(t, bytes.HasPrefix(data, []byte("old line\n")))
	got, _ := seqs(t, data)
	requireSeqRange(t, got, 0, 100)
}

// timedWriter records when each write happened and what it held.
type timedWriter struct {
	mu     sync.Mutex
	start  time.Time
	at     []time.Duration
	events []int
	buf    bytes.Buffer
}

func (w *timedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.at = append(w.at, time.Since(w.start))
	w.events = append(w.events, bytes.Count(p, []byte("\n")))
	return w.buf.Write(p)
}

func TestRateLowIsPaced(t *testing.T) {
	w := &timedWriter{start: time.Now()}
	g, err := New(Options{LogType: LogTypeJSON, Writer: w, LogsPerSec: 20, TotalCount: 6})
	require.NoError(t, err)
	require.NoError(t, g.Run(context.Background()))
	// Event k is due at k/20 s. A write may carry several events when the
	// generator was not scheduled for a while (a loaded machine) and
	// catches up, but never an event before it is due (a little
	// scheduling slack).
	total := 0
	for i, at := range w.at {
		total += w.events[i]
		last := total - 1 // the latest event in this write
		require.GreaterOrEqual(t, at, time.Duration(last)*50*time.Millisecond-2*time.Millisecond,
			"write %d carries event %d before it is due (writes %v)", i, last, w.events)
	}
	require.Equal(t, 6, total)
}

func TestRateHighIsBatched(t *testing.T) {
	w := &timedWriter{start: time.Now()}
	g, err := New(Options{LogType: LogTypeNginx, Writer: w, LogsPerSec: 20000, TotalCount: 5000})
	require.NoError(t, err)
	require.NoError(t, g.Run(context.Background()))
	got, _ := seqs(t, w.buf.Bytes())
	requireSeqRange(t, got, 0, 5000)
	require.GreaterOrEqual(t, g.Stats().Elapsed, 249*time.Millisecond, "5000 events at 20000/s take at least 4999/20000 s")
	require.Less(t, len(w.events), 2500, "events are written in batches, not one write each")
}

func TestCancelWritesWholeEvents(t *testing.T) {
	var buf bytes.Buffer
	g, err := New(Options{LogType: LogTypeJavaMultiline, Writer: &buf, LogsPerSec: 5000, FirstSeq: 1})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = g.Run(ctx)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	st := g.Stats()
	require.Greater(t, st.Events, uint64(10))
	got, _ := seqs(t, buf.Bytes())
	requireSeqRange(t, got, 1, st.Events)
	require.EqualValues(t, 1+st.Events, st.NextSeq)
	require.EqualValues(t, buf.Len(), st.Bytes)
}

func TestParseSeq(t *testing.T) {
	for _, tc := range []struct {
		line string
		want uint64
		ok   bool
	}{
		{`1.2.3.4 - - [x] "GET /a?seq=123 HTTP/1.1" 200 1 "-" "-" 0.001`, 123, true},
		{`"GET /search?q=sequence&seq=9 HTTP/1.1"`, 9, true},
		{`{"time":"t","seq":77,"msg":"x"}`, 77, true},
		{"[t]\t[INFO]\tseq:5\tmsg:x", 5, true},
		{"2026-01-01 00:00:00.000 ERROR [main] C - seq=42 failed", 42, true},
		{"\tat com.example.Seq.run(Seq.java:1)", 0, false},
		{"subsequence=5 unseq:3", 0, false},
		{"seq=", 0, false},
		{"seq=x seq=8", 8, true},
		{"", 0, false},
	} {
		got, ok := ParseSeq([]byte(tc.line))
		require.Equal(t, tc.ok, ok, tc.line)
		require.Equal(t, tc.want, got, tc.line)
	}
}

func FuzzParseSeq(f *testing.F) {
	f.Add([]byte(`GET /a?seq=123 HTTP/1.1`))
	f.Add([]byte(`{"seq":18446744073709551615}`))
	f.Add([]byte("\tseq:"))
	f.Fuzz(func(t *testing.T, line []byte) {
		n, ok := ParseSeq(line)
		if ok && !bytes.Contains(line, []byte(strconv.FormatUint(n, 10))) {
			t.Fatalf("ParseSeq(%q) = %d, which is not in the line", line, n)
		}
	})
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "512K": 512 << 10, "64MiB": 64 << 20, "1G": 1 << 30, "1gb": 1 << 30, " 2 M ": 2 << 20, "10B": 10} {
		got, err := ParseByteSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-1", "1.5G", "G", "lots", "99999999999T"} {
		_, err := ParseByteSize(in)
		require.Error(t, err, in)
	}
}

func TestParseSeqInContainerRecords(t *testing.T) {
	for _, tc := range []struct {
		line string
		want uint64
	}{
		{`{"log":"1.2.3.4 - - [x] \"GET /s?q=a\u0026seq=17 HTTP/1.1\" 200\n","stream":"stdout","time":"t"}`, 17},
		{`{"log":"{\"time\":\"t\",\"seq\":18}\n","stream":"stdout","time":"t"}`, 18},
		{`{"log":"[t]\t[INFO]\tseq:19\tmsg:x\n","stream":"stdout","time":"t"}`, 19},
		{`2026-01-01T00:00:00Z stdout F [t]	[INFO]	seq:20	msg:x`, 20},
	} {
		got, ok := ParseSeq([]byte(tc.line))
		require.True(t, ok, tc.line)
		require.Equal(t, tc.want, got, tc.line)
	}
	_, ok := ParseSeq([]byte(`{"log":"a\u0016seq=3"}`))
	require.False(t, ok, `\u0016 is not an escaped &`)
}
