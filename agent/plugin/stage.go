// Package plugin runs the processors of a Logtail plugin pipeline
// (inputDetail.plugin.processors), so container stdout configs parse and
// filter as the guides and the Logtail plugin docs show: processor_json,
// processor_regex, processor_split_char, processor_split_string,
// processor_filter_regex, processor_add_fields, processor_drop and
// processor_rename, with their detail keys and defaults.
//
// Processors run in order on each event's fields. What a processor cannot do
// (source field missing, regex or separator not fitting, not JSON) leaves
// the event as its Keep…/NoKeyError/NoMatchError settings say and is counted
// in sluice_plugin_failures_total{config, processor, reason}; events
// processor_filter_regex drops are counted there with reason "filtered".
// Failures a processor is asked to report (NoKeyError, NoMatchError, and
// every JSON parse error) are logged, at most once per 10 s per stage.
//
// Parsed values are substrings of the event's own fields where they can be
// (regex, split), so the stage allocates little beyond flattened JSON keys.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"

	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/internal/promreg"
	"github.com/sluicelog/sluice/logconfig"
)

// Config is the processor part of one collection config.
type Config struct {
	// Name is the collection config name, the `config` metrics label.
	Name       string
	Processors []logconfig.PluginItem
}

// Settings carries what the stage needs from the agent.
type Settings struct {
	Logger     *slog.Logger          // nil: no logging
	Registerer prometheus.Registerer // nil: metrics not registered
}

// Validate checks every processor; it returns the errors (type, keys,
// regexes, all naming the processors[i] path) and warnings for detail keys
// that are not used.
func (c *Config) Validate() (warnings []string, err error) {
	var errs []error
	for i, it := range c.Processors {
		_, w, err := build(i, it)
		warnings = append(warnings, w...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return warnings, errors.Join(errs...)
}

// Stage runs the processors on each batch and passes the result on.
type Stage struct {
	name  string
	procs []processor
	types []string
	next  pipeline.Consumer
	pool  sync.Pool

	failures []map[failure]prometheus.Counter // per processor
	log      *slog.Logger
	mu       sync.Mutex
	lastLog  time.Time
	quiet    int
}

type worker struct {
	out    *pipeline.Batch
	fields []pipeline.Field
	cols   []string
	json   fastjson.Parser
}

// NewStage validates cfg and returns the stage feeding next.
func NewStage(cfg Config, next pipeline.Consumer, set Settings) (*Stage, error) {
	if next == nil {
		return nil, fmt.Errorf("plugin processors of %q: next consumer is nil", cfg.Name)
	}
	s := &Stage{name: cfg.Name, next: next, log: set.Logger}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_plugin_failures_total",
		Help: "Events a plugin processor could not process (no_key, no_match, parse_error) or dropped (filtered), by collection config, processor and reason.",
	}, []string{"config", "processor", "reason"})
	vec, err := promreg.Reuse(set.Registerer, vec)
	if err != nil {
		return nil, fmt.Errorf("plugin processors of %q: %w", cfg.Name, err)
	}
	for i, it := range cfg.Processors {
		p, _, err := build(i, it)
		if err != nil {
			return nil, fmt.Errorf("config %q: %w", cfg.Name, err)
		}
		label := fmt.Sprintf("%d:%s", i, it.Type)
		counters := map[failure]prometheus.Counter{}
		for _, f := range []failure{failNoKey, failNoMatch, failParseError, failFiltered} {
			counters[f] = vec.WithLabelValues(cfg.Name, label, string(f))
		}
		s.procs, s.types, s.failures = append(s.procs, p), append(s.types, it.Type), append(s.failures, counters)
	}
	s.pool.New = func() any { return &worker{out: pipeline.NewBatch()} }
	return s, nil
}

// Consume processes b's events into a pooled batch and passes that on with
// b's Ack; a batch whose events were all filtered out is acked here.
func (s *Stage) Consume(ctx context.Context, b *pipeline.Batch) error {
	if len(s.procs) == 0 || len(b.Events) == 0 {
		return s.next.Consume(ctx, b)
	}
	w := s.pool.Get().(*worker)
	defer s.pool.Put(w)
	out := w.out
	out.Reset()
	out.Topic, out.Source, out.Ack = b.Topic, b.Source, b.Ack
	out.Tags = append(out.Tags, b.Tags...)
	for i := range b.Events {
		ev := &b.Events[i]
		fields, keep := s.processEvent(w, append(w.fields[:0], ev.Fields...))
		w.fields = fields[:0]
		if !keep {
			continue
		}
		out.BeginEvent(ev.Time, ev.TimeNs)
		for _, f := range fields {
			out.AddFieldString(f.Key, f.Value)
		}
		out.EndEvent()
	}
	clear(w.fields[:cap(w.fields)])
	if out.Len() == 0 {
		if b.Ack != nil {
			b.Ack.Done(nil) // every event was filtered out, and counted
		}
		out.Reset()
		return nil
	}
	err := s.next.Consume(ctx, out)
	out.Reset() // drop references to b's arena before pooling
	return err
}

func (s *Stage) processEvent(w *worker, fields []pipeline.Field) ([]pipeline.Field, bool) {
	for i, p := range s.procs {
		var keep bool
		var f failure
		fields, keep, f = p.process(w, fields)
		if f != "" {
			s.failures[i][f].Inc()
			if p.report(f) {
				s.warn(i, f, fields)
			}
		}
		if !keep {
			return fields, false
		}
	}
	return fields, true
}

func (s *Stage) warn(i int, f failure, fields []pipeline.Field) {
	if s.log == nil {
		return
	}
	s.mu.Lock()
	now := time.Now()
	if !s.lastLog.IsZero() && now.Sub(s.lastLog) < 10*time.Second {
		s.quiet++
		s.mu.Unlock()
		return
	}
	quiet := s.quiet
	s.lastLog, s.quiet = now, 0
	s.mu.Unlock()
	sample := ""
	if len(fields) > 0 {
		sample = fields[0].Key + "=" + fields[0].Value
		if len(sample) > 256 {
			sample = sample[:256]
		}
	}
	s.log.Warn("plugin processor could not process an event", "config", s.name,
		"processor", fmt.Sprintf("processors[%d] %s", i, s.types[i]), "reason", string(f),
		"sample", sample, "suppressedSinceLastWarning", quiet)
}
