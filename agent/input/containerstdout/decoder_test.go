package containerstdout

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/input/file"
	"github.com/sluicelog/sluice/agent/multiline"
)

type got struct {
	content, time, source string
	sec                   uint32
	end                   int64
}

// feed pushes lines as a file would (offsets after each "\n") and returns
// the events.
func feed(t *testing.T, d *Decoder, lines []string, flush bool) []got {
	t.Helper()
	var out []got
	emit := func(ev file.Event) {
		g := got{content: string(ev.Content), sec: ev.Sec, end: ev.End}
		for _, f := range ev.Fields {
			switch f.Key {
			case KeyTime:
				g.time = string(f.Value)
			case KeySource:
				g.source = string(f.Value)
			}
		}
		out = append(out, g)
	}
	var off int64
	for _, l := range lines {
		off += int64(len(l)) + 1
		d.Push([]byte(l), off, emit)
	}
	if flush {
		d.Flush(emit)
	}
	return out
}

func newTestDecoder(t *testing.T, cfg DecoderConfig) (*Decoder, *Metrics) {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	cfg.Counters = m.Counters("c")
	d, err := NewDecoder(cfg)
	require.NoError(t, err)
	return d, m
}

const ts1, ts2 = "2024-01-01T00:00:01.000000001Z", "2024-01-01T00:00:02Z"

func TestDecoderCRIPartialsJoined(t *testing.T) {
	d, _ := newTestDecoder(t, DecoderConfig{Stdout: true, Stderr: true})
	lines := []string{
		ts1 + " stdout P first ",
		ts2 + " stderr F an error",
		ts2 + " stdout P second ",
		ts2 + " stdout F third",
		ts2 + " stdout F next",
	}
	evs := feed(t, d, lines, false)
	require.Equal(t, []got{
		// stdout holds a partial line from offset 0: the stderr event must
		// not let a restart skip it.
		{content: "an error", time: ts2, source: "stderr", sec: 1704067202, end: 0},
		{content: "first second third", time: ts1, source: "stdout", sec: 1704067201, end: int64(len(strings.Join(lines[:4], "\n")) + 1)},
		{content: "next", time: ts2, source: "stdout", sec: 1704067202, end: int64(len(strings.Join(lines, "\n")) + 1)},
	}, evs)
	require.False(t, d.Pending())
}

func TestDecoderDockerJSONPartials(t *testing.T) {
	d, _ := newTestDecoder(t, DecoderConfig{Stdout: true, Stderr: true})
	evs := feed(t, d, []string{
		`{"log":"abc","stream":"stdout","time":"` + ts1 + `"}`,
		`{"log":"def\n","stream":"stdout","time":"` + ts2 + `"}`,
		`{"log":"\n","stream":"stderr","time":"` + ts2 + `"}`,
	}, false)
	require.Len(t, evs, 2)
	require.Equal(t, "abcdef", evs[0].content)
	require.Equal(t, ts1, evs[0].time)
	require.Equal(t, "", evs[1].content)
	require.Equal(t, "stderr", evs[1].source)
}

func TestDecoderStreamSelectionAndMalformed(t *testing.T) {
	d, m := newTestDecoder(t, DecoderConfig{Stdout: false, Stderr: true})
	evs := feed(t, d, []string{
		ts1 + " stdout F not wanted",
		ts1 + " stderr F wanted",
		"garbage that is no record",
	}, false)
	require.Equal(t, []string{"wanted", "garbage that is no record"}, []string{evs[0].content, evs[1].content})
	require.Equal(t, "", evs[1].source, "a malformed line has no stream")
	require.Equal(t, 1.0, testutil.ToFloat64(m.lines.WithLabelValues("c", "stream_skipped")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.lines.WithLabelValues("c", "malformed")))
}

func TestDecoderMaxLogSizeCutsAndCounts(t *testing.T) {
	d, m := newTestDecoder(t, DecoderConfig{Stdout: true, Stderr: true, MaxLogSize: 10})
	evs := feed(t, d, []string{
		ts1 + " stdout P 0123456",
		ts1 + " stdout P 789abcdef",
		ts1 + " stdout F XYZ",
	}, false)
	var contents []string
	for _, e := range evs {
		contents = append(contents, e.content)
	}
	require.Equal(t, []string{"0123456789", "abcdefXYZ"}, contents, "nothing lost, nothing longer than MaxLogSize")
	require.Equal(t, 1.0, testutil.ToFloat64(m.lines.WithLabelValues("c", "cut")))
}

func TestDecoderMultilinePerStream(t *testing.T) {
	d, _ := newTestDecoder(t, DecoderConfig{Stdout: true, Stderr: true,
		Multiline: multiline.Config{BeginRegex: `\d{4}-\d\d-\d\d .*`}})
	lines := []string{
		ts1 + " stdout F 2024-01-01 panic: boom",
		ts2 + " stderr F 2024-01-01 warn",
		ts2 + " stdout F \tat main.go:1",
		ts2 + " stdout F \tat main.go:2",
		ts2 + " stdout F 2024-01-01 next",
	}
	evs := feed(t, d, lines, false)
	require.Len(t, evs, 1, "stderr's event is open until its next begin line; stdout's first event is complete")
	require.Equal(t, "2024-01-01 panic: boom\n\tat main.go:1\n\tat main.go:2", evs[0].content)
	require.Equal(t, ts1, evs[0].time, "the event has its first line's time")
	require.Equal(t, int64(len(lines[0])+1), evs[0].end, "stderr still holds its line starting right after the first one")
	require.True(t, d.Pending())
	var flushed []got
	d.Flush(func(ev file.Event) { flushed = append(flushed, got{content: string(ev.Content)}) })
	require.ElementsMatch(t, []string{"2024-01-01 warn", "2024-01-01 next"}, []string{flushed[0].content, flushed[1].content})
	require.False(t, d.Pending())
}

func TestDecoderFlushKeepsUnfinishedPartial(t *testing.T) {
	d, _ := newTestDecoder(t, DecoderConfig{Stdout: true, Stderr: true})
	evs := feed(t, d, []string{ts1 + " stdout P never finished"}, true)
	require.Equal(t, []got{{content: "never finished", time: ts1, source: "stdout", sec: 1704067201, end: int64(len(ts1+" stdout P never finished") + 1)}}, evs)
}

func TestDecoderConfigErrors(t *testing.T) {
	_, err := NewDecoder(DecoderConfig{})
	require.ErrorContains(t, err, "Stdout and Stderr are both false")
	_, err = NewDecoder(DecoderConfig{Stdout: true, Multiline: multiline.Config{BeginRegex: "("}})
	require.ErrorContains(t, err, "BeginLineRegex")
}

func ExampleDecodeCRI() {
	r, _ := DecodeCRI([]byte("2024-01-01T00:00:00.123456789Z stdout F hello"))
	fmt.Printf("%s %s %v %q\n", r.Time, r.Stream, r.Partial, r.Content)
	// Output: 2024-01-01T00:00:00.123456789Z stdout false "hello"
}

// A stream's first event cut by MaxEventBytes is reported by its splitter
// as ending where that splitter last stopped (0 for a fresh one); another
// stream has already emitted up to its own line, and End must not move
// back (found by FuzzDecoder: "End 0 after 25").
func TestDecoderEndNeverMovesBack(t *testing.T) {
	d, _ := newTestDecoder(t, DecoderConfig{Stdout: true, Stderr: true,
		Multiline: multiline.Config{BeginRegex: `\d+ .*`, MaxEventBytes: 64}})
	lines := []string{
		ts1 + " stdout F 1 first",
		ts1 + " stdout F 2 second",
		ts1 + " stderr F 3 " + strings.Repeat("x", 100),
	}
	evs := feed(t, d, lines, true)
	require.GreaterOrEqual(t, len(evs), 3)
	require.Equal(t, "1 first", evs[0].content)
	first := int64(len(lines[0]) + 1)
	require.Equal(t, first, evs[0].end)
	for i := 1; i < len(evs); i++ {
		require.GreaterOrEqual(t, evs[i].end, evs[i-1].end, "event %d (%q) ends before event %d", i, evs[i].content, i-1)
	}
}

// Resuming at a checkpoint, a cut first event must not report an End
// before where reading started: a checkpoint there would re-read the
// whole file after the next restart.
func TestDecoderEndNotBeforeResumeOffset(t *testing.T) {
	d, _ := newTestDecoder(t, DecoderConfig{Stdout: true, Stderr: true,
		Multiline: multiline.Config{BeginRegex: `\d+ .*`, MaxEventBytes: 64}})
	line := ts1 + " stderr F 3 " + strings.Repeat("x", 100)
	const resume = 10_000
	var ends []int64
	d.Push([]byte(line), resume+int64(len(line))+1, func(ev file.Event) { ends = append(ends, ev.End) })
	d.Flush(func(ev file.Event) { ends = append(ends, ev.End) })
	require.NotEmpty(t, ends)
	for _, e := range ends {
		require.GreaterOrEqual(t, e, int64(resume))
	}
}
