// Package parse turns the raw `content` of log events into fields the way
// Logtail's file parsers do: common_reg_log (a regex matching the whole
// event, groups named by keys), json_log (top-level members; nested values
// kept as compact JSON text), delimiter_log (separator, quote, autoExtend,
// acceptNoEnoughKeys), apsara_log (`[time]\t[LEVEL]\t[thread]\t[file:line]\t
// key:value…`) and the console's NGINX mode (a preset regex for the combined
// log format). The event time comes from timeKey/timeFormat (strftime, see
// agent/parse/strptime) in logTimezone.
//
// Failures follow Logtail: an event that does not parse is dropped when
// discardUnmatch is set, else kept as one field __raw_log__; a time that does
// not parse leaves the event parsed with the time it was read. Every
// failure and every drop is counted (sluice_parse_failures_total and
// sluice_parse_discarded_events_total, labels config and reason) and logged,
// at most once per 10 s per stage.
//
// The hot path does not allocate: parsed values are substrings of the raw
// event, which lives in the input batch's arena, and are written into a
// second batch kept in a pool, which is handed to the next stage.
package parse

import (
	"context"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/sluicelog/sluice/agent/parse/strptime"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/agent/regexp/anchored"
)

// reason is why an event failed to parse; it is the metrics label.
type reason uint8

const (
	ok reason = iota
	reasonNoSource
	reasonRegex
	reasonJSON
	reasonColumns
	reasonQuote
	reasonApsara
	reasonTime
	numReasons

	// unchanged is not a failure: the parser leaves the event as it came
	// (Logtail does so for blank delimiter and apsara lines).
	unchanged reason = 255
)

var reasonNames = [numReasons]string{
	ok:             "ok",
	reasonNoSource: "no_source_key",
	reasonRegex:    "regex_unmatched",
	reasonJSON:     "json_invalid",
	reasonColumns:  "delimiter_columns",
	reasonQuote:    "delimiter_quote",
	reasonApsara:   "apsara_format",
	reasonTime:     "time_format",
}

var reasonHelp = [numReasons]string{
	reasonNoSource: "the event has no source field",
	reasonRegex:    "the regex does not match the whole event; check inputDetail.regex",
	reasonJSON:     "the event is not a JSON object",
	reasonColumns:  "fewer columns than keys; set acceptNoEnoughKeys to keep such lines",
	reasonQuote:    "a quoted column is not closed or is followed by text other than the separator",
	reasonApsara:   "the event does not start with an apsara [time] field",
	reasonTime:     "the time field does not match inputDetail.timeFormat; the read time is used",
}

// parser adds the fields parsed from raw to out's open event and returns
// ok or why it failed (the stage then aborts the event).
type parser interface {
	parse(w *worker, out *pipeline.Batch, raw string) reason
}

// Stage parses the events of each batch and passes the result on.
type Stage struct {
	cfg       Config
	sourceKey string
	timeKey   string
	next      pipeline.Consumer
	parser    parser
	layout    *strptime.Layout
	loc       *time.Location
	now       func() time.Time
	m         *metrics
	pool      sync.Pool
}

// NewStage validates cfg and returns the stage feeding next.
func NewStage(cfg Config, next pipeline.Consumer, set Settings) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("parse config %q: %w", cfg.Name, err)
	}
	if next == nil {
		return nil, fmt.Errorf("parse config %q: next consumer is nil", cfg.Name)
	}
	s := &Stage{
		cfg:       cfg,
		sourceKey: cfg.sourceKey(),
		timeKey:   cfg.timeKey(),
		next:      next,
		loc:       set.Location,
		now:       set.Now,
	}
	if s.loc == nil {
		s.loc = time.Local
	}
	if cfg.AdjustTimezone {
		s.loc, _ = strptime.ParseTimezone(cfg.LogTimezone) // validated
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.TimeFormat != "" && cfg.LogType != Apsara {
		s.layout, _ = strptime.Compile(cfg.TimeFormat) // validated
	}
	switch cfg.LogType {
	case Regex, Nginx:
		regex, keys := cfg.Regex, cfg.Keys
		if cfg.LogType == Nginx && regex == "" && len(keys) == 0 {
			regex, keys = NginxRegex, NginxKeys
		}
		if regex == "" {
			regex = "(.*)"
		}
		if len(keys) == 0 {
			keys = []string{DefaultSourceKey}
		}
		s.parser = &regexParser{re: anchored.MustCompile(regex, regexOptions), keys: append([]string(nil), keys...)}
	case JSON:
		s.parser = jsonParser{}
	case Delimiter:
		s.parser = newDelimiterParser(&cfg)
	case Apsara:
		s.parser = &apsaraParser{loc: s.loc}
	}
	var err error
	if s.m, err = newMetrics(set.Registerer, cfg.Name, set.Logger); err != nil {
		return nil, fmt.Errorf("parse config %q: %w", cfg.Name, err)
	}
	s.pool.New = func() any { return &worker{out: pipeline.NewBatch()} }
	return s, nil
}

// worker is the per-call scratch space, pooled so concurrent inputs can
// share a stage and steady-state parsing does not allocate.
type worker struct {
	out  *pipeline.Batch
	caps []int
	cols []string
	buf  []byte
	json fastjson.Parser

	// last parsed time, keyed by an owned copy of its text
	tcKey  []byte
	tcSec  int64
	tcNsec int32
	tcOK   bool
}

// Consume parses b's events into a pooled batch and passes that to the next
// consumer with b's Ack. A batch whose events were all dropped is acked
// here.
func (s *Stage) Consume(ctx context.Context, b *pipeline.Batch) error {
	if s.parser == nil || len(b.Events) == 0 {
		return s.next.Consume(ctx, b)
	}
	w := s.pool.Get().(*worker)
	defer s.pool.Put(w)
	out := w.out
	out.Reset()
	out.Topic, out.Source, out.Ack = b.Topic, b.Source, b.Ack
	out.Tags = append(out.Tags, b.Tags...)
	var now time.Time
	if s.layout != nil || s.cfg.LogType == Apsara {
		now = s.now()
	}
	for i := range b.Events {
		s.parseEvent(w, out, &b.Events[i], now)
	}
	if out.Len() == 0 {
		if b.Ack != nil {
			b.Ack.Done(nil) // every event was dropped and counted
		}
		out.Reset()
		return nil
	}
	err := s.next.Consume(ctx, out)
	out.Reset() // drop references to b's arena before pooling
	return err
}

func (s *Stage) parseEvent(w *worker, out *pipeline.Batch, ev *pipeline.Event, now time.Time) {
	src := -1
	for j := range ev.Fields {
		if ev.Fields[j].Key == s.sourceKey {
			src = j
			break
		}
	}
	out.BeginEvent(ev.Time, ev.TimeNs)
	if src < 0 {
		// Nothing to parse: pass the event on unchanged.
		s.m.fail(reasonNoSource, "")
		for _, f := range ev.Fields {
			out.AddFieldString(f.Key, f.Value)
		}
		out.EndEvent()
		return
	}
	raw := ev.Fields[src].Value
	for j, f := range ev.Fields {
		if j != src {
			out.AddFieldString(f.Key, f.Value)
		}
	}
	r := s.parser.parse(w, out, raw)
	if r == unchanged {
		out.AbortEvent()
		out.BeginEvent(ev.Time, ev.TimeNs)
		for _, f := range ev.Fields {
			out.AddFieldString(f.Key, f.Value)
		}
		out.EndEvent()
		return
	}
	if r == ok && s.layout != nil {
		s.setTime(w, out, now, raw)
	}
	if r != ok {
		out.AbortEvent()
		s.m.fail(r, raw)
		if s.cfg.DiscardUnmatch {
			s.m.discard(r)
			return
		}
		out.BeginEvent(ev.Time, ev.TimeNs)
		for j, f := range ev.Fields {
			if j != src {
				out.AddFieldString(f.Key, f.Value)
			}
		}
		out.AddFieldString(RawLogKey, raw)
	}
	if s.cfg.EnableRawLog {
		out.AddFieldString(RawKey, raw)
	}
	out.EndEvent()
}

// setTime parses the time field of the open event; on failure the event
// keeps its read time.
func (s *Stage) setTime(w *worker, out *pipeline.Batch, now time.Time, raw string) {
	fields := out.OpenFields()
	for i := len(fields) - 1; i >= 0; i-- {
		if fields[i].Key != s.timeKey {
			continue
		}
		v := fields[i].Value
		if w.tcOK && string(w.tcKey) == v {
			out.SetEventTime(uint32(w.tcSec), uint32(w.tcNsec))
			return
		}
		sec, nsec, ok := s.layout.Parse(v, s.loc, now)
		if !ok || sec < 0 || sec > 1<<32-1 {
			s.m.fail(reasonTime, v)
			return
		}
		w.tcKey, w.tcSec, w.tcNsec, w.tcOK = append(w.tcKey[:0], v...), sec, nsec, true
		out.SetEventTime(uint32(sec), uint32(nsec))
		return
	}
	s.m.fail(reasonTime, raw)
}

// bytesOf views s as bytes without copying; the result must not be written.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// limiter lets one log line through per interval and counts the rest.
type limiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const logInterval = 10 * time.Second

func (l *limiter) allow() (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < logInterval {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}
