// Package multiline joins the lines of a file into log events the way
// Logtail/LoongCollector do (ProcessorSplitMultilineLogStringNative):
//
//   - begin only: a line matching BeginRegex starts an event; following lines
//     that do not match it are appended.
//   - begin + continue: a begin line starts an event; lines matching
//     ContinueRegex are appended; the first other line ends the event and is
//     itself either a new begin line or unmatched.
//   - begin + end: a begin line starts an event, which takes every following
//     line up to and including a line matching EndRegex. The begin line itself
//     is not checked against EndRegex (as upstream).
//   - continue + end: lines matching ContinueRegex followed by a line matching
//     EndRegex form an event; an end line on its own is an event; a run of
//     continue lines not closed by an end line is unmatched.
//   - end only: every run of lines up to and including an end line is an event.
//   - empty or `.*` BeginRegex (and no end): every line is an event. Like
//     upstream, `.*` in any of the three patterns means "not set", and a
//     ContinueRegex without BeginRegex or EndRegex is ignored (with a warning).
//
// Patterns are matched at the start of the line (anchored prefix match, as
// LoongCollector's regex_search with match_continuous; Logtail 1.x used a
// full match, which gives the same result for the `\d+-\d+-\d+ .*` style
// patterns its console generates), evaluated by agent/regexp/anchored, which
// is several times faster than regexp on such patterns.
//
// Lines that belong to no event (before the first begin line, a begin+continue
// run broken by a non-begin line, an event without its end line when flushed)
// are never dropped silently: like upstream's default
// (Multiline.UnmatchedContentTreatment = single_line) each becomes an event of
// its own, or, with DiscardUnmatched, is dropped; either way it is counted.
// Events longer than MaxEventBytes are cut into several events (at a line
// break in the last half of the limit when there is one, else at a rune
// boundary) and counted.
package multiline

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/agent/regexp/anchored"
)

// lineOptions anchor patterns at the start of the line.
var lineOptions = anchored.Options{Anchor: anchored.Prefix}

// DefaultMaxEventBytes bounds an event when Config.MaxEventBytes is 0: 512 KiB,
// Logtail's default max_read_buffer_size.
const DefaultMaxEventBytes = 512 << 10

// Config selects the multiline mode. The zero value means one event per line.
type Config struct {
	BeginRegex    string
	ContinueRegex string
	EndRegex      string
	// MaxEventBytes cuts longer events; 0 means DefaultMaxEventBytes.
	MaxEventBytes int
	// CheckLength, when positive, matches the patterns against at most
	// the first CheckLength bytes of a line (Logtail's
	// BeginLineCheckLength for container stdout): a huge line costs no
	// more to classify than its head.
	CheckLength int
	// DiscardUnmatched drops lines that belong to no event instead of
	// emitting each as its own event (Multiline.UnmatchedContentTreatment =
	// discard). They are counted either way.
	DiscardUnmatched bool
	// Counters receive what the splitter had to do to lines it could not
	// place; nil counters are skipped. See Metrics.
	Counters Counters
	// Logger receives rate-limited warnings about unmatched lines; nil
	// means no logging.
	Logger *slog.Logger
}

// Counters are the per-config counters a Splitter increments.
type Counters struct {
	// UnmatchedLines counts lines that belonged to no event (emitted alone
	// or discarded).
	UnmatchedLines prometheus.Counter
	// DiscardedLines counts the unmatched lines dropped by DiscardUnmatched.
	DiscardedLines prometheus.Counter
	// SplitEvents counts events cut because they exceeded MaxEventBytes
	// (once per cut).
	SplitEvents prometheus.Counter
}

// Stats are the splitter's own cumulative counts (the same as its Counters).
type Stats struct {
	UnmatchedLines uint64
	DiscardedLines uint64
	SplitEvents    uint64
}

// isUnset reports whether a pattern means "not configured" (as upstream).
func isUnset(p string) bool { return p == "" || p == ".*" }

// Validate checks the patterns and limits; the errors name the key.
func (c Config) Validate() error {
	var errs []error
	for _, p := range []struct{ key, expr string }{
		{"BeginRegex", c.BeginRegex}, {"ContinueRegex", c.ContinueRegex}, {"EndRegex", c.EndRegex},
	} {
		if isUnset(p.expr) {
			continue
		}
		if _, err := anchored.Compile(p.expr, lineOptions); err != nil {
			errs = append(errs, fmt.Errorf("multiline %s: %w (use RE2 syntax, e.g. `\\d{4}-\\d{2}-\\d{2} .*`)", p.key, err))
		}
	}
	if c.MaxEventBytes < 0 {
		errs = append(errs, fmt.Errorf("multiline MaxEventBytes: %d is negative (use 0 for the default of %d)", c.MaxEventBytes, DefaultMaxEventBytes))
	}
	return errors.Join(errs...)
}

// mark is the end of one line inside the pending buffer.
type mark struct {
	pos int   // index in buf just after the line's last byte
	end int64 // file offset just after the line
}

// Splitter joins lines into events for one file. It is not safe for
// concurrent use; use one per file.
type Splitter struct {
	begin, cont, end *anchored.Regexp
	max              int
	checkLen         int // 0: whole line
	discard          bool
	counters         Counters
	stats            Stats
	logger           *slog.Logger

	partial bool
	buf     []byte
	marks   []mark
	base    int64 // file offset where the pending event starts
	last    int64 // offset just after the last line pushed

	logAt      time.Time
	suppressed int
	splitLogAt time.Time
}

// New validates cfg and returns a splitter.
func New(cfg Config) (*Splitter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Splitter{max: cfg.MaxEventBytes, checkLen: max(cfg.CheckLength, 0), discard: cfg.DiscardUnmatched, counters: cfg.Counters, logger: cfg.Logger}
	if s.max == 0 {
		s.max = DefaultMaxEventBytes
	}
	compile := func(p string) *anchored.Regexp {
		if isUnset(p) {
			return nil
		}
		return anchored.MustCompile(p, lineOptions) // validated above
	}
	s.begin, s.cont, s.end = compile(cfg.BeginRegex), compile(cfg.ContinueRegex), compile(cfg.EndRegex)
	if s.begin == nil && s.end == nil && s.cont != nil {
		s.cont = nil
		if s.logger != nil {
			s.logger.Warn("multiline ContinueRegex ignored: it needs BeginRegex or EndRegex; every line is an event",
				"continueRegex", cfg.ContinueRegex)
		}
	}
	s.partial = s.endOnly()
	return s, nil
}

// Start tells a new splitter the file offset its first line begins at
// (a checkpoint, or where first-sight reading starts). Offsets reported
// for events cut before any whole line is emitted are that position, not
// 0: a checkpoint taken from them must not send a restart back to the
// beginning of the file.
func (s *Splitter) Start(off int64) {
	s.last, s.base = off, off
}

// head is what of line the patterns look at (see Config.CheckLength).
func (s *Splitter) head(line []byte) []byte {
	if s.checkLen > 0 && len(line) > s.checkLen {
		return line[:s.checkLen]
	}
	return line
}

func (s *Splitter) endOnly() bool { return s.begin == nil && s.cont == nil && s.end != nil }

// Multiline reports whether lines are joined (false: one event per line).
func (s *Splitter) Multiline() bool { return s.begin != nil || s.end != nil }

// Stats returns the counts since New.
func (s *Splitter) Stats() Stats { return s.stats }

// Pending reports whether lines are held waiting for the rest of their event.
// When it is false after Push(line, end), every byte before end has been
// emitted or counted as discarded, so an input may checkpoint at end (once
// the batches before it are acked) even if the last lines emitted nothing.
func (s *Splitter) Pending() bool { return len(s.marks) > 0 }

// Push adds one line (without its line break); end is the file offset just
// after it. Complete events are passed to emit with the offset just after
// their last line; the bytes are valid only during the call.
func (s *Splitter) Push(line []byte, end int64, emit func(event []byte, end int64)) {
	prev := s.last
	s.last = end
	switch {
	case s.begin == nil && s.end == nil:
		s.emitLine(line, prev, end, emit)
	case !s.partial:
		var re *anchored.Regexp
		if s.begin != nil {
			re = s.begin
		} else {
			re = s.cont
		}
		switch {
		case re.Match(s.head(line)):
			s.base = prev
			s.partial = true
			s.add(line, end, emit)
		case s.end != nil && s.begin == nil && s.cont != nil && s.end.Match(s.head(line)):
			s.emitLine(line, prev, end, emit) // continue + end: a lone end line
		default:
			s.unmatchedLine(line, prev, end, emit)
		}
	case s.cont != nil && s.cont.Match(s.head(line)):
		s.add(line, end, emit)
	case s.end != nil && s.cont != nil:
		// continue + end, or begin + continue + end: the end pattern decides
		// whether what was gathered is an event.
		s.add(line, end, emit)
		if s.end.Match(s.head(line)) {
			s.emitPending(emit)
		} else {
			s.unmatchedPending(emit)
		}
		s.partial = false
	case s.end != nil:
		// begin + end, or end only
		s.add(line, end, emit)
		if s.end.Match(s.head(line)) {
			s.emitPending(emit)
			s.partial = s.begin == nil
			s.base = end
		}
	case s.cont == nil:
		// begin only
		if s.begin.Match(s.head(line)) {
			s.emitPending(emit)
			s.base = prev
		}
		s.add(line, end, emit)
	default:
		// begin + continue, and line is not a continuation
		s.emitPending(emit)
		if s.begin.Match(s.head(line)) {
			s.base = prev
			s.add(line, end, emit)
		} else {
			s.partial = false
			s.unmatchedLine(line, prev, end, emit)
		}
	}
}

// Flush emits what is pending: an event, or, when the mode needs an end
// line that never came, its lines as unmatched.
func (s *Splitter) Flush(emit func(event []byte, end int64)) {
	if len(s.marks) > 0 {
		if s.end == nil {
			s.emitPending(emit)
		} else {
			s.unmatchedPending(emit)
		}
	}
	s.partial = s.endOnly()
	s.base = s.last
}

// add appends line to the pending event, cutting it when it grows too big.
func (s *Splitter) add(line []byte, end int64, emit func([]byte, int64)) {
	if len(s.marks) > 0 {
		s.buf = append(s.buf, '\n')
	} else {
		s.buf = s.buf[:0]
	}
	s.buf = append(s.buf, line...)
	s.marks = append(s.marks, mark{pos: len(s.buf), end: end})
	for len(s.buf) > s.max {
		s.cutPending(emit)
	}
}

// cutPending emits the first part of an oversized pending event and keeps the
// rest pending.
func (s *Splitter) cutPending(emit func([]byte, int64)) {
	k, skip := cutPoint(s.buf, s.max)
	// The offset reported is the end of the last line wholly emitted, so a
	// checkpoint never claims bytes that were not emitted.
	off := s.base
	n := 0
	for n < len(s.marks) && s.marks[n].pos <= k {
		off = s.marks[n].end
		n++
	}
	s.split(k)
	emit(s.buf[:k], off)
	rest := k + skip
	copy(s.buf, s.buf[rest:])
	s.buf = s.buf[:len(s.buf)-rest]
	m := copy(s.marks, s.marks[n:])
	s.marks = s.marks[:m]
	for i := range s.marks {
		s.marks[i].pos -= rest
	}
	s.base = off
	if len(s.buf) == 0 && len(s.marks) > 0 {
		// The cut fell exactly at the end of the last line; nothing remains.
		s.base = s.marks[len(s.marks)-1].end
		s.marks = s.marks[:0]
	}
}

// cutPoint chooses where to cut b (len(b) > max): at a line break in the
// last half of the limit (dropping the break), else at the last rune start
// at or before max.
func cutPoint(b []byte, max int) (k, skip int) {
	if i := bytes.LastIndexByte(b[:max+1], '\n'); i > 0 && i >= max/2 {
		return i, 1
	}
	k = max
	for j := max; j > 0 && j > max-utf8.UTFMax; j-- {
		if utf8.RuneStart(b[j]) {
			k = j
			break
		}
	}
	if k == 0 {
		k = max
	}
	return k, 0
}

func (s *Splitter) emitPending(emit func([]byte, int64)) {
	if len(s.marks) == 0 {
		return
	}
	emit(s.buf, s.marks[len(s.marks)-1].end)
	s.base = s.marks[len(s.marks)-1].end
	s.buf = s.buf[:0]
	s.marks = s.marks[:0]
}

// emitLine emits one line as an event, cut if it is too long.
func (s *Splitter) emitLine(line []byte, prev, end int64, emit func([]byte, int64)) {
	for len(line) > s.max {
		k, skip := cutPoint(line, s.max)
		s.split(k)
		if k+skip == len(line) {
			emit(line[:k], end)
			return
		}
		emit(line[:k], prev)
		line = line[k+skip:]
	}
	emit(line, end)
}

// unmatchedPending handles every pending line as unmatched.
func (s *Splitter) unmatchedPending(emit func([]byte, int64)) {
	start := 0
	prev := s.base
	first := true
	for _, m := range s.marks {
		line := s.buf[start:m.pos]
		if first {
			s.warn(line, len(s.marks))
			first = false
		}
		s.unmatched(line, prev, m.end, emit)
		prev = m.end
		start = m.pos + 1
	}
	if len(s.marks) > 0 {
		s.base = s.marks[len(s.marks)-1].end
	}
	s.buf = s.buf[:0]
	s.marks = s.marks[:0]
}

func (s *Splitter) unmatchedLine(line []byte, prev, end int64, emit func([]byte, int64)) {
	s.warn(line, 1)
	s.unmatched(line, prev, end, emit)
}

func (s *Splitter) unmatched(line []byte, prev, end int64, emit func([]byte, int64)) {
	s.inc(&s.stats.UnmatchedLines, s.counters.UnmatchedLines)
	if s.discard {
		s.inc(&s.stats.DiscardedLines, s.counters.DiscardedLines)
		return
	}
	s.emitLine(line, prev, end, emit)
}

func (s *Splitter) inc(n *uint64, c prometheus.Counter) {
	*n++
	if c != nil {
		c.Inc()
	}
}

// split counts a cut of an oversized event and logs it, rate-limited.
func (s *Splitter) split(k int) {
	s.inc(&s.stats.SplitEvents, s.counters.SplitEvents)
	if s.logger == nil {
		return
	}
	now := time.Now()
	if now.Sub(s.splitLogAt) < logInterval {
		return
	}
	s.splitLogAt = now
	s.logger.Warn("multiline: event longer than the maximum event size was cut; raise the limit (max_read_buffer_size) if events are legitimately this long",
		"maxEventBytes", s.max, "cutAt", k, "cutsSoFar", s.stats.SplitEvents)
}

// warn logs at most one unmatched-line warning per logInterval.
func (s *Splitter) warn(first []byte, lines int) {
	if s.logger == nil {
		return
	}
	now := time.Now()
	if now.Sub(s.logAt) < logInterval {
		s.suppressed += lines
		return
	}
	const maxShown = 256
	if len(first) > maxShown {
		first = first[:maxShown]
	}
	action := "emitted as single-line events"
	if s.discard {
		action = "discarded"
	}
	s.logger.Warn("multiline: lines match no event pattern; check BeginRegex/ContinueRegex/EndRegex",
		"action", action, "lines", lines, "firstLine", string(first), "suppressedSinceLastWarning", s.suppressed)
	s.logAt = now
	s.suppressed = 0
}

const logInterval = 10 * time.Second
