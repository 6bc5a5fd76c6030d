package multiline

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

type ev struct {
	text string
	end  int64
}

// run pushes text line by line (offsets as in a file with '\n' breaks),
// flushes when flush is set, and returns the emitted events.
func run(t testing.TB, s *Splitter, text string, flush bool) []ev {
	t.Helper()
	var out []ev
	emit := func(b []byte, end int64) { out = append(out, ev{string(b), end}) }
	var off int64
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		off += int64(len(line)) + 1
		s.Push([]byte(line), off, emit)
	}
	if flush {
		s.Flush(emit)
	}
	return out
}

func texts(evs []ev) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.text)
	}
	return out
}

const java = `2024-01-02 10:00:00 ERROR boom
java.lang.IllegalStateException: x
	at a.B.c(B.java:1)
	at a.B.d(B.java:2)
2024-01-02 10:00:01 INFO ok
2024-01-02 10:00:02 WARN w
	at x
`

func TestModes(t *testing.T) {
	const date = `\d{4}-\d{2}-\d{2} .*`
	cases := []struct {
		name      string
		cfg       Config
		in        string
		want      []string // after Flush
		unmatched uint64
	}{
		{"single line empty", Config{}, "a\nb\n\nc", []string{"a", "b", "", "c"}, 0},
		{"single line dot star", Config{BeginRegex: ".*"}, "a\nb", []string{"a", "b"}, 0},
		{"continue only is ignored", Config{ContinueRegex: `\s.*`}, "a\n b", []string{"a", " b"}, 0},
		{"begin only java", Config{BeginRegex: date}, java, []string{
			"2024-01-02 10:00:00 ERROR boom\njava.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)",
			"2024-01-02 10:00:01 INFO ok",
			"2024-01-02 10:00:02 WARN w\n\tat x",
		}, 0},
		{"begin only lines before first begin", Config{BeginRegex: date}, "junk1\njunk2\n" + java, []string{
			"junk1", "junk2",
			"2024-01-02 10:00:00 ERROR boom\njava.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)",
			"2024-01-02 10:00:01 INFO ok",
			"2024-01-02 10:00:02 WARN w\n\tat x",
		}, 2},
		{"begin matches at the start of the line", Config{BeginRegex: `\d+`}, "12\nx\n12a\na12\n3", []string{"12\nx", "12a\na12", "3"}, 0},
		{"anchors in patterns", Config{BeginRegex: `^\[`, EndRegex: `.*\]$`}, "[a\nb]\n[c]x\n[d]", []string{"[a\nb]", "[c]x\n[d]"}, 0},
		{"begin continue", Config{BeginRegex: `B.*`, ContinueRegex: `C.*`}, "B1\nC1\nC2\nB2\nX\nC3\nB3\nC4", []string{
			"B1\nC1\nC2", "B2", "X", "C3", "B3\nC4",
		}, 2},
		{"begin continue, begin line matching continue is a continuation", Config{BeginRegex: `[BC].*`, ContinueRegex: `C.*`}, "B1\nC1\nB2", []string{"B1\nC1", "B2"}, 0},
		{"begin end", Config{BeginRegex: `B.*`, EndRegex: `E.*`}, "X\nB1\nm\nB2\nE1\nBE\nE2\nB3\nm", []string{
			"X", "B1\nm\nB2\nE1", "BE\nE2", "B3", "m",
		}, 3},
		{"continue end", Config{ContinueRegex: `C.*`, EndRegex: `E.*`}, "C1\nC2\nE1\nE2\nX\nC3\nX2\nC4\nE3", []string{
			"C1\nC2\nE1", "E2", "X", "C3", "X2", "C4\nE3",
		}, 3},
		{"end only", Config{EndRegex: `.*;`}, "a\nb;\nc;\nd\ne", []string{"a\nb;", "c;", "d", "e"}, 2},
		{"begin continue end", Config{BeginRegex: `B.*`, ContinueRegex: `C.*`, EndRegex: `E.*`}, "B\nC\nE\nB\nX\nB\nE", []string{
			"B\nC\nE", "B", "X", "B\nE",
		}, 2},
		{"dot star end means unset", Config{BeginRegex: `B.*`, EndRegex: `.*`}, "B\nx\nB", []string{"B\nx", "B"}, 0},
		{"crlf lines keep their carriage return", Config{BeginRegex: `\d.*`}, "1 a\r\n b\r\n2\r", []string{"1 a\r\n b\r", "2\r"}, 0},
		{"invalid utf8", Config{BeginRegex: `B.*`}, "B\xff\n\xfe\x00", []string{"B\xff\n\xfe\x00"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			require.NoError(t, err)
			got := run(t, s, tc.in, true)
			require.Equal(t, tc.want, texts(got))
			require.Equal(t, tc.unmatched, s.Stats().UnmatchedLines)
			require.False(t, s.Pending())
		})
	}
}

func TestOffsetsAndPending(t *testing.T) {
	s, err := New(Config{BeginRegex: `B.*`})
	require.NoError(t, err)
	got := run(t, s, "B1\nx\nB2\ny", false)
	// B1\nx ends at offset 5; B2\ny stays pending until the next begin line or Flush.
	require.Equal(t, []ev{{"B1\nx", 5}}, got)
	require.True(t, s.Pending())
	var out []ev
	s.Flush(func(b []byte, end int64) { out = append(out, ev{string(b), end}) })
	require.Equal(t, []ev{{"B2\ny", 10}}, out)
	require.False(t, s.Pending())
	// After a flush the next line is a fresh start: a non-begin line is unmatched.
	out = nil
	s.Push([]byte("z"), 12, func(b []byte, end int64) { out = append(out, ev{string(b), end}) })
	require.Equal(t, []ev{{"z", 12}}, out)
	require.EqualValues(t, 1, s.Stats().UnmatchedLines)
}

func TestEndOnlyFlushTreatsIncompleteEventAsUnmatched(t *testing.T) {
	s, err := New(Config{EndRegex: `.*\}`})
	require.NoError(t, err)
	got := run(t, s, "{\n a\n}\n{\n b", true)
	require.Equal(t, []ev{{"{\n a\n}", 7}, {"{", 9}, {" b", 12}}, got)
	require.EqualValues(t, 2, s.Stats().UnmatchedLines)
	// Still in end-only mode after the flush.
	got = run(t, s, "x\ny}", true)
	require.Equal(t, []string{"x\ny}"}, texts(got))
}

func TestDiscardUnmatchedCounts(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	s, err := New(Config{BeginRegex: `B.*`, DiscardUnmatched: true, Counters: m.Counters("cfg")})
	require.NoError(t, err)
	got := run(t, s, "x\ny\nB\nz", true)
	require.Equal(t, []string{"B\nz"}, texts(got))
	require.Equal(t, Stats{UnmatchedLines: 2, DiscardedLines: 2}, s.Stats())
	require.InDelta(t, 2, testutil.ToFloat64(m.lines.WithLabelValues("cfg", "discarded")), 0)
	require.InDelta(t, 2, testutil.ToFloat64(m.lines.WithLabelValues("cfg", "unmatched")), 0)
	// A second registration on the same registerer reuses the counters.
	m2, err := NewMetrics(reg)
	require.NoError(t, err)
	m2.Counters("cfg").UnmatchedLines.Inc()
	require.InDelta(t, 3, testutil.ToFloat64(m.lines.WithLabelValues("cfg", "unmatched")), 0)
}

func TestOversizedEventsAreCutAndCounted(t *testing.T) {
	t.Run("multiline cut at a line break", func(t *testing.T) {
		s, err := New(Config{BeginRegex: `B.*`, MaxEventBytes: 10})
		require.NoError(t, err)
		got := run(t, s, "B123\n4567\n89ab\ncd\nB", true)
		require.Equal(t, []ev{{"B123\n4567", 10}, {"89ab\ncd", 18}, {"B", 20}}, got)
		require.EqualValues(t, 1, s.Stats().SplitEvents)
	})
	t.Run("long single line cut at rune boundary", func(t *testing.T) {
		s, err := New(Config{MaxEventBytes: 4})
		require.NoError(t, err)
		got := run(t, s, "abcé€x", true) // é=2 bytes, €=3 bytes
		require.Equal(t, []string{"abc", "é", "€x"}, texts(got))
		// Only the last piece carries the line's end offset.
		require.Equal(t, []int64{0, 0, 10}, []int64{got[0].end, got[1].end, got[2].end})
		require.EqualValues(t, 2, s.Stats().SplitEvents)
	})
	t.Run("long line inside an event", func(t *testing.T) {
		s, err := New(Config{BeginRegex: `B.*`, MaxEventBytes: 8})
		require.NoError(t, err)
		long := strings.Repeat("x", 20)
		got := run(t, s, "B\n"+long+"\nB", true)
		var total int
		for _, e := range got {
			require.LessOrEqual(t, len(e.text), 8)
			total += len(e.text)
		}
		// The only line break is too early to cut at, so the cut is by size.
		require.Equal(t, []string{"B\nxxxxxx", "xxxxxxxx", "xxxxxx", "B"}, texts(got))
		require.Equal(t, int64(2), got[0].end, "a cut reports the end of the last whole line in it")
		require.Equal(t, int64(2), got[1].end)
		require.Equal(t, int64(23), got[2].end)
		require.Equal(t, int64(25), got[3].end)
		// offsets never go backwards
		for i := 1; i < len(got); i++ {
			require.GreaterOrEqual(t, got[i].end, got[i-1].end)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	_, err := New(Config{BeginRegex: `(\d+`})
	require.ErrorContains(t, err, "BeginRegex")
	_, err = New(Config{EndRegex: `[`})
	require.ErrorContains(t, err, "EndRegex")
	_, err = New(Config{MaxEventBytes: -1})
	require.ErrorContains(t, err, "MaxEventBytes")
}

// CheckLength (BeginLineCheckLength) makes the patterns look only at a
// line's head: a begin marker further in does not start an event.
func TestCheckLengthLimitsWhatPatternsSee(t *testing.T) {
	text := "BEGIN one\n" + strings.Repeat("x", 20) + " BEGIN two\nBEGIN three\n"
	whole, err := New(Config{BeginRegex: `.*BEGIN.*`})
	require.NoError(t, err)
	require.Equal(t, []string{"BEGIN one", strings.Repeat("x", 20) + " BEGIN two", "BEGIN three"}, texts(run(t, whole, text, true)))

	head, err := New(Config{BeginRegex: `.*BEGIN.*`, CheckLength: 16})
	require.NoError(t, err)
	require.Equal(t, []string{"BEGIN one\n" + strings.Repeat("x", 20) + " BEGIN two", "BEGIN three"}, texts(run(t, head, text, true)),
		"the marker past byte 16 is not seen: the line continues the event")
}
