package containerstdout

import (
	"fmt"

	"github.com/sluicelog/sluice/agent/input/file"
	"github.com/sluicelog/sluice/agent/multiline"
)

// Field keys of container events (Logtail's names).
const (
	KeyTime   = "_time_"   // the runtime's timestamp, as written
	KeySource = "_source_" // stdout | stderr
)

// DecoderConfig configures the line decoder of container log files.
type DecoderConfig struct {
	// Stdout and Stderr select the streams collected; records of the other
	// stream are skipped (counted).
	Stdout, Stderr bool
	// MaxLogSize bounds a line joined from partial records; a longer one is
	// cut into several events (counted). 0 means 512 KiB.
	MaxLogSize int
	// Multiline joins lines into events per stream (BeginLineRegex);
	// zero value: every line is an event.
	Multiline multiline.Config
	// Counters receive the decoder's counts; nil counters are skipped.
	Counters Counters
}

// DefaultMaxLogSize is service_docker_stdout's MaxLogSize default.
const DefaultMaxLogSize = 512 << 10

// Validate checks the limits and the multiline patterns.
func (c DecoderConfig) Validate() error {
	if c.MaxLogSize < 0 {
		return fmt.Errorf("MaxLogSize must not be negative, got %d", c.MaxLogSize)
	}
	if !c.Stdout && !c.Stderr {
		return fmt.Errorf("Stdout and Stderr are both false: nothing would be collected; enable at least one")
	}
	if err := c.Multiline.Validate(); err != nil {
		return fmt.Errorf("BeginLineRegex: %w", err)
	}
	return nil
}

// NewDecoder returns a file.Decoder for one container log file (CRI or
// Docker json-file, told apart per line).
func NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxLogSize == 0 {
		cfg.MaxLogSize = DefaultMaxLogSize
	}
	d := &Decoder{cfg: cfg, lastEnd: -1}
	d.streams[0].name, d.streams[1].name = []byte("stdout"), []byte("stderr")
	for i := range d.streams {
		s := &d.streams[i]
		s.d = d
		if cfg.Multiline.BeginRegex != "" || cfg.Multiline.EndRegex != "" {
			ml, err := multiline.New(cfg.Multiline)
			if err != nil {
				return nil, err
			}
			if ml.Multiline() {
				s.ml = ml
			}
		}
		s.mlEmit = s.emitML
	}
	return d, nil
}

// Decoder turns a container log file's records into events: partial
// records are joined (up to MaxLogSize), the streams not selected are
// skipped, lines are joined by the multiline rule per stream, and every
// event gets _time_ (the runtime's timestamp of its first record) and
// _source_. Lines that are neither CRI nor Docker JSON are kept as they
// are (counted), never dropped.
//
// Stdout and stderr records interleave in one file while each stream may
// hold back a partial line or an open multiline event, so an event's End is
// the start of the earliest line still held by any stream: a restart reads
// those again (at-least-once) instead of losing them.
type Decoder struct {
	cfg     DecoderConfig
	streams [4]stream // stdout, stderr, other stream names, malformed lines
	scratch []byte
	lastEnd int64
	emitted int64 // End of the last event handed on
	fields  [2]file.Field
	emit    func(file.Event)
}

// stream is one stream's held state.
type stream struct {
	d    *Decoder
	name []byte

	partial      []byte // joined partial records
	partialTime  []byte
	partialStart int64
	inPartial    bool

	ml      *multiline.Splitter
	mlEmit  func([]byte, int64)
	mlTime  []byte // _time_ of the open multiline event
	mlStart int64
}

var _ file.Decoder = (*Decoder)(nil)

// Pending reports whether any stream holds lines.
func (d *Decoder) Pending() bool {
	for i := range d.streams {
		s := &d.streams[i]
		if s.inPartial || (s.ml != nil && s.ml.Pending()) {
			return true
		}
	}
	return false
}

// Push decodes one line of the file.
func (d *Decoder) Push(line []byte, end int64, emit func(file.Event)) {
	start := d.lastEnd
	if start < 0 || start > end {
		start = max(0, end-int64(len(line))-1)
		// Reading (re)starts here: what lies before was dealt with.
		d.emitted = start
	}
	d.lastEnd = end
	d.emit = emit
	rec, scratch, err := DecodeLine(line, d.scratch)
	d.scratch = scratch
	if err != nil {
		d.cfg.Counters.inc(d.cfg.Counters.Malformed)
		d.streams[3].line(line, nil, start, end)
		return
	}
	s := d.streamFor(rec.Stream)
	if s == nil {
		d.cfg.Counters.inc(d.cfg.Counters.Skipped)
		return
	}
	if rec.Partial || s.inPartial {
		if !s.inPartial {
			s.inPartial, s.partialStart = true, start
			s.partialTime = append(s.partialTime[:0], rec.Time...)
			s.partial = s.partial[:0]
		}
		room := d.cfg.MaxLogSize - len(s.partial)
		content := rec.Content
		for len(content) > room {
			// Longer than MaxLogSize: hand on what fits, keep joining.
			cut := utf8Cut(content[:max(room, 0)])
			s.partial = append(s.partial, content[:cut]...)
			d.cfg.Counters.inc(d.cfg.Counters.Cut)
			s.inPartial = false
			s.line(s.partial, s.partialTime, s.partialStart, start)
			s.inPartial, s.partialStart = true, start
			s.partial = s.partial[:0]
			content = content[cut:]
			room = d.cfg.MaxLogSize
		}
		s.partial = append(s.partial, content...)
		if rec.Partial {
			return
		}
		s.inPartial = false
		s.line(s.partial, s.partialTime, s.partialStart, end)
		return
	}
	s.line(rec.Content, rec.Time, start, end)
}

// utf8Cut returns n or less so that no UTF-8 sequence is split at n.
func utf8Cut(b []byte) int {
	n := len(b)
	for i := n - 1; i >= 0 && i >= n-4; i-- {
		if b[i]&0xC0 != 0x80 { // a rune start
			need := 1
			switch {
			case b[i] >= 0xF0:
				need = 4
			case b[i] >= 0xE0:
				need = 3
			case b[i] >= 0xC0:
				need = 2
			}
			if i+need > n {
				if i == 0 {
					return n
				}
				return i
			}
			return n
		}
	}
	return n
}

func (d *Decoder) streamFor(name []byte) *stream {
	switch string(name) {
	case "stdout":
		if !d.cfg.Stdout {
			return nil
		}
		return &d.streams[0]
	case "stderr":
		if !d.cfg.Stderr {
			return nil
		}
		return &d.streams[1]
	}
	return &d.streams[2]
}

// line hands one complete line (partials joined) on, through the stream's
// multiline splitter when there is one. start is where its first record
// begins in the file, end the offset after its last record.
func (s *stream) line(content, ts []byte, start, end int64) {
	if s.ml == nil {
		s.d.out(s, content, ts, end)
		return
	}
	if !s.ml.Pending() {
		s.mlTime = append(s.mlTime[:0], ts...)
		s.mlStart = start
	}
	emitted := false
	s.ml.Push(content, end, func(ev []byte, e int64) {
		emitted = true
		s.mlEmit(ev, e)
	})
	if emitted && s.ml.Pending() {
		// The line opened a new event.
		s.mlTime = append(s.mlTime[:0], ts...)
		s.mlStart = start
	}
}

func (s *stream) emitML(ev []byte, end int64) { s.d.out(s, ev, s.mlTime, end) }

// out emits one event. The stream's own held lines start after end, so
// only the other streams can hold earlier ones.
func (d *Decoder) out(s *stream, content, ts []byte, end int64) {
	ev := file.Event{Content: content, End: end}
	n := 0
	if len(ts) > 0 {
		if t, ok := ParseTime(ts); ok && t.Unix() > 0 {
			ev.Sec, ev.Nsec = uint32(t.Unix()), uint32(t.Nanosecond())
		}
		d.fields[n] = file.Field{Key: KeyTime, Value: ts}
		n++
	}
	if s.name != nil {
		d.fields[n] = file.Field{Key: KeySource, Value: s.name}
		n++
	}
	ev.Fields = d.fields[:n]
	// Held lines of this stream were pushed after the emitted ones, so
	// they begin at or after end; ignore them when the event is this
	// stream's own flush.
	// A stream's splitter reports offsets from that stream's own lines
	// (0 before its first), which can lie behind what other streams have
	// already emitted. Everything still held was pushed after, or was
	// held at, the last emitted End, so that End stays valid: never move
	// back (a checkpoint going back would re-read, not lose, but it is
	// wrong all the same).
	ev.End = max(d.heldFromExcept(s, end), d.emitted)
	d.emitted = ev.End
	d.emit(ev)
}

func (d *Decoder) heldFromExcept(s *stream, end int64) int64 {
	for i := range d.streams {
		o := &d.streams[i]
		if o == s {
			continue
		}
		if o.inPartial {
			end = min(end, o.partialStart)
		}
		if o.ml != nil && o.ml.Pending() {
			end = min(end, o.mlStart)
		}
	}
	return end
}

// Flush emits everything held: partial lines as they are (the rest of the
// line never came) and open multiline events.
func (d *Decoder) Flush(emit func(file.Event)) {
	d.emit = emit
	for i := range d.streams {
		s := &d.streams[i]
		if s.inPartial {
			s.inPartial = false
			s.line(s.partial, s.partialTime, s.partialStart, d.lastEnd)
		}
	}
	for i := range d.streams {
		s := &d.streams[i]
		if s.ml != nil && s.ml.Pending() {
			s.ml.Flush(s.mlEmit)
		}
	}
}
