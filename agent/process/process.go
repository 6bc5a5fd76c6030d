// Package process applies the per-config processing Logtail does after
// parsing: the filterKey/filterRegex filter (an event is kept only if every
// listed key is present and its value matches its regex in full, as
// Logtail's boost regex_match), sensitive_keys masking (the text matched by
// regex_content right after regex_begin is replaced by a constant or by its
// upper-case hex MD5, first occurrence or all, as ProcessorDesensitizeNative
// does), and the tags every log group carries: __hostname__,
// __user_defined_id__ and the env tags named by ALIYUN_LOG_ENV_TAGS.
//
// The stage changes each batch in place (the pipeline contract allows
// processors to) and passes it on. Filtered-out events are counted in
// sluice_process_filtered_events_total{config, reason}.
package process

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/agent/regexp/anchored"
	"github.com/sluicelog/sluice/internal/promreg"
)

// Tag keys added to every batch.
const (
	HostnameTag      = "__hostname__"
	UserDefinedIDTag = "__user_defined_id__"
)

// SensitiveKey is one inputDetail.sensitive_keys entry.
type SensitiveKey struct {
	Key          string // field to mask
	Type         string // "const" or "md5"
	RegexBegin   string // what precedes the secret (kept)
	RegexContent string // the secret (replaced)
	All          bool   // replace every occurrence, not only the first
	Const        string // replacement for Type "const"
}

// Config is the processing part of one collection config.
type Config struct {
	// Name is the collection config name, the `config` metrics label.
	Name string
	// FilterKey and FilterRegex are inputDetail.filterKey/filterRegex:
	// parallel lists; an event is kept only if every key matches.
	FilterKey   []string
	FilterRegex []string
	// SensitiveKeys is inputDetail.sensitive_keys.
	SensitiveKeys []SensitiveKey
	// Hostname becomes the __hostname__ tag; "" adds none.
	Hostname string
	// UserDefinedID (ALIYUN_LOGTAIL_USER_DEFINED_ID) becomes the
	// __user_defined_id__ tag; "" adds none.
	UserDefinedID string
	// EnvTags are added as tags in order (see EnvTags for building them
	// from ALIYUN_LOG_ENV_TAGS).
	EnvTags []pipeline.Field
}

// Settings carries what the stage needs from the agent.
type Settings struct {
	Logger     *slog.Logger          // nil: no logging
	Registerer prometheus.Registerer // nil: metrics not registered
}

// EnvTags turns an ALIYUN_LOG_ENV_TAGS value (`_pod_name_|_pod_ip_`) into
// tags whose values come from lookup (os.LookupEnv in the agent); a variable
// that is not set gives an empty value, as in Logtail.
func EnvTags(spec string, lookup func(string) (string, bool)) []pipeline.Field {
	var tags []pipeline.Field
	for _, name := range strings.Split(spec, "|") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		v, _ := lookup(name)
		tags = append(tags, pipeline.Field{Key: name, Value: v})
	}
	return tags
}

// Validate checks the config; errors name the inputDetail key and the fix.
func (c *Config) Validate() error {
	var errs []error
	if len(c.FilterKey) != len(c.FilterRegex) {
		errs = append(errs, fmt.Errorf("inputDetail.filterKey has %d entries but filterRegex has %d: give one regex per key", len(c.FilterKey), len(c.FilterRegex)))
	}
	for i := range min(len(c.FilterKey), len(c.FilterRegex)) {
		if c.FilterKey[i] == "" {
			errs = append(errs, fmt.Errorf("inputDetail.filterKey[%d] is empty", i))
		}
		if _, err := anchored.Compile(c.FilterRegex[i], filterOptions); err != nil {
			errs = append(errs, fmt.Errorf("inputDetail.filterRegex[%d]: %w", i, err))
		}
	}
	for i, sk := range c.SensitiveKeys {
		if sk.Key == "" {
			errs = append(errs, fmt.Errorf("inputDetail.sensitive_keys[%d].key is empty: name the field to mask", i))
		}
		if sk.Type != "const" && sk.Type != "md5" {
			errs = append(errs, fmt.Errorf("inputDetail.sensitive_keys[%d].type %q: use const or md5", i, sk.Type))
		}
		if sk.RegexContent == "" {
			errs = append(errs, fmt.Errorf("inputDetail.sensitive_keys[%d].regex_content is empty: give the pattern of the secret", i))
		}
		// Each part must be valid on its own, so neither can break out of
		// the group wrapping it in the combined pattern.
		if _, err := regexp.Compile(sk.RegexBegin); err != nil {
			errs = append(errs, fmt.Errorf("inputDetail.sensitive_keys[%d].regex_begin: %w", i, err))
		} else if _, err := regexp.Compile(sk.RegexContent); err != nil {
			errs = append(errs, fmt.Errorf("inputDetail.sensitive_keys[%d].regex_content: %w", i, err))
		} else if re, err := regexp.Compile(maskPattern(sk)); err != nil || re.NumSubexp() < 1 {
			errs = append(errs, fmt.Errorf("inputDetail.sensitive_keys[%d].regex_begin/regex_content: %w", i, err))
		}
	}
	for i, t := range c.EnvTags {
		if t.Key == "" {
			errs = append(errs, fmt.Errorf("env tag %d has an empty name (check ALIYUN_LOG_ENV_TAGS)", i))
		}
	}
	return errors.Join(errs...)
}

// Filter regexes match the whole value; `.` spans line breaks like boost's.
var filterOptions = anchored.Options{Anchor: anchored.Full, DotNL: true, MultiLine: true}

// maskPattern is upstream's `(begin)content`, with content grouped so that a
// content starting with an operator (`*`, `|x`) cannot reach into the begin
// group.
func maskPattern(sk SensitiveKey) string { return "(" + sk.RegexBegin + ")(?:" + sk.RegexContent + ")" }

type filter struct {
	key string
	re  *anchored.Regexp
}

type mask struct {
	key   string
	re    *regexp.Regexp
	md5   bool
	all   bool
	konst string
	// fast finds matches without allocating: candidate starts are the
	// occurrences of the pattern's literal prefix, each tried with an
	// anchored match. Nil when the pattern has no literal prefix or uses
	// assertions that depend on text before the match.
	fast   *anchored.Regexp
	prefix string
}

// maxFastAttempts bounds the anchored attempts per value before the search
// moves to regexp, whose worst case is linear.
const maxFastAttempts = 64

func newMask(sk SensitiveKey) mask {
	expr := maskPattern(sk)
	m := mask{key: sk.Key, re: regexp.MustCompile(expr), md5: sk.Type == "md5", all: sk.All, konst: sk.Const}
	prefix, _ := m.re.LiteralPrefix()
	tree, err := syntax.Parse(expr, syntax.Perl)
	if prefix == "" || err != nil || hasAssertion(tree) {
		return m
	}
	if fast, err := anchored.Compile(expr, anchored.Options{Anchor: anchored.Prefix}); err == nil {
		m.fast, m.prefix = fast, prefix
	}
	return m
}

func hasAssertion(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	}
	for _, sub := range re.Sub {
		if hasAssertion(sub) {
			return true
		}
	}
	return false
}

// find returns the leftmost-first match in v at or after pos as
// [start, end, group-1 start, group-1 end], like regexp.
func (m *mask) find(v string, pos int, caps []int, attempts *int) ([]int, []int) {
	if m.fast != nil {
		for *attempts < maxFastAttempts {
			i := strings.Index(v[pos:], m.prefix)
			if i < 0 {
				return nil, caps
			}
			pos += i
			*attempts++
			if loc := m.fast.FindSubmatchIndex(caps[:0], bytesOf(v[pos:])); loc != nil {
				for k := range loc[:4] {
					if loc[k] >= 0 {
						loc[k] += pos
					}
				}
				return loc[:4], loc
			}
			pos++
		}
	}
	loc := m.re.FindStringSubmatchIndex(v[pos:])
	if loc == nil {
		return nil, caps
	}
	for k := range loc[:4] {
		if loc[k] >= 0 {
			loc[k] += pos
		}
	}
	return loc[:4], caps
}

// Stage filters, masks and tags batches.
type Stage struct {
	next     pipeline.Consumer
	filters  []filter
	masks    []mask
	tags     []pipeline.Field
	missing  prometheus.Counter
	mismatch prometheus.Counter
	bufs     sync.Pool
}

// NewStage validates cfg and returns the stage feeding next.
func NewStage(cfg Config, next pipeline.Consumer, set Settings) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("process config %q: %w", cfg.Name, err)
	}
	if next == nil {
		return nil, fmt.Errorf("process config %q: next consumer is nil", cfg.Name)
	}
	s := &Stage{next: next}
	for i, k := range cfg.FilterKey {
		s.filters = append(s.filters, filter{key: k, re: anchored.MustCompile(cfg.FilterRegex[i], filterOptions)})
	}
	for _, sk := range cfg.SensitiveKeys {
		s.masks = append(s.masks, newMask(sk))
	}
	if cfg.Hostname != "" {
		s.tags = append(s.tags, pipeline.Field{Key: HostnameTag, Value: cfg.Hostname})
	}
	if cfg.UserDefinedID != "" {
		s.tags = append(s.tags, pipeline.Field{Key: UserDefinedIDTag, Value: cfg.UserDefinedID})
	}
	s.tags = append(s.tags, cfg.EnvTags...)

	filtered := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_process_filtered_events_total",
		Help: "Events dropped by the filterKey/filterRegex filter, by collection config and reason (key_missing, regex_unmatched).",
	}, []string{"config", "reason"})
	filtered, err := promreg.Reuse(set.Registerer, filtered)
	if err != nil {
		return nil, fmt.Errorf("process config %q: %w", cfg.Name, err)
	}
	s.missing = filtered.WithLabelValues(cfg.Name, "key_missing")
	s.mismatch = filtered.WithLabelValues(cfg.Name, "regex_unmatched")
	s.bufs.New = func() any { return new(scratch) }
	return s, nil
}

// Consume filters, masks and tags b in place and passes it on. A batch
// whose every event was filtered out is acked here.
func (s *Stage) Consume(ctx context.Context, b *pipeline.Batch) error {
	if len(s.filters) > 0 && len(b.Events) > 0 {
		b.Filter(s.keep)
		if len(b.Events) == 0 {
			if b.Ack != nil {
				b.Ack.Done(nil) // every event was filtered out, and counted
			}
			return nil
		}
	}
	if len(s.masks) > 0 {
		s.mask(b)
	}
	for _, t := range s.tags {
		if !hasTag(b, t.Key) {
			b.AddTag(t.Key, t.Value)
		}
	}
	return s.next.Consume(ctx, b)
}

func hasTag(b *pipeline.Batch, key string) bool {
	for _, t := range b.Tags {
		if t.Key == key {
			return true
		}
	}
	return false
}

func (s *Stage) keep(ev *pipeline.Event) bool {
	for _, f := range s.filters {
		v, ok := value(ev, f.key)
		if !ok {
			s.missing.Inc()
			return false
		}
		if !f.re.Match(bytesOf(v)) {
			s.mismatch.Inc()
			return false
		}
	}
	return true
}

func value(ev *pipeline.Event, key string) (string, bool) {
	for _, f := range ev.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// scratch is the per-call buffer space of masking.
type scratch struct {
	buf  []byte
	caps []int
}

func (s *Stage) mask(b *pipeline.Batch) {
	sc := s.bufs.Get().(*scratch)
	defer s.bufs.Put(sc)
	for i := range b.Events {
		fields := b.Events[i].Fields
		for j := range fields {
			for _, m := range s.masks {
				if fields[j].Key != m.key || fields[j].Value == "" {
					continue
				}
				out, caps, changed := m.apply(sc.buf[:0], fields[j].Value, sc.caps)
				sc.buf, sc.caps = out, caps
				if changed {
					fields[j].Value = b.CopyBytes(out)
				}
			}
		}
	}
}

const hexUpper = "0123456789ABCDEF"

// apply appends v with the secrets replaced to dst; changed is false when
// nothing matched. Successive matches are found as regexp.ReplaceAll finds
// them (an empty match right after a match is skipped).
func (m *mask) apply(dst []byte, v string, caps []int) ([]byte, []int, bool) {
	last, pos, prevEnd := 0, 0, -1
	changed := false
	attempts := 0
	var loc []int
	for pos <= len(v) {
		loc, caps = m.find(v, pos, caps, &attempts)
		if loc == nil {
			break
		}
		start, end, beginEnd := loc[0], loc[1], loc[3]
		if loc[3] < 0 {
			beginEnd = start
		}
		if !(start == end && start == prevEnd) {
			dst = append(dst, v[last:beginEnd]...)
			if m.md5 {
				sum := md5.Sum(bytesOf(v[beginEnd:end]))
				for _, c := range sum {
					dst = append(dst, hexUpper[c>>4], hexUpper[c&0x0f])
				}
			} else {
				dst = append(dst, m.konst...)
			}
			last, changed = end, true
			if !m.all {
				break
			}
		}
		prevEnd = end
		if end > start {
			pos = end
		} else if pos < len(v) {
			_, w := utf8.DecodeRuneInString(v[end:])
			pos = end + w
		} else {
			break
		}
	}
	if !changed {
		return dst, caps, false
	}
	return append(dst, v[last:]...), caps, true
}
