package plugin

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/logconfig"
)

// Processor types this package runs.
const (
	TypeJSON        = "processor_json"
	TypeRegex       = "processor_regex"
	TypeSplitChar   = "processor_split_char"
	TypeSplitString = "processor_split_string"
	TypeFilterRegex = "processor_filter_regex"
	TypeAddFields   = "processor_add_fields"
	TypeDrop        = "processor_drop"
	TypeRename      = "processor_rename"
)

// Types lists the supported processor types.
var Types = []string{TypeJSON, TypeRegex, TypeSplitChar, TypeSplitString, TypeFilterRegex, TypeAddFields, TypeDrop, TypeRename}

// failure is why a processor could not do its work on an event; it is the
// metrics label.
type failure string

const (
	failNoKey      failure = "no_key"      // the source field is missing
	failNoMatch    failure = "no_match"    // regex or separator did not fit
	failParseError failure = "parse_error" // not JSON
	failFiltered   failure = "filtered"    // processor_filter_regex dropped it
)

// processor changes one event's fields. It returns the fields (possibly the
// same slice, edited) and whether to keep the event; a failure is counted
// and, when the processor was asked to report it, logged.
type processor interface {
	process(w *worker, fields []pipeline.Field) ([]pipeline.Field, bool, failure)
	// report says whether failure f is logged (NoKeyError, NoMatchError).
	report(f failure) bool
}

// build decodes one processors[] item.
func build(i int, it logconfig.PluginItem) (processor, []string, error) {
	at := fmt.Sprintf("inputDetail.plugin.processors[%d]", i)
	var (
		p    processor
		dst  any
		post func() error
	)
	switch it.Type {
	case TypeJSON:
		c := &jsonProc{NoKeyError: true, ExpandConnector: "_", KeepSource: true, KeepSourceIfParseError: true}
		dst, p, post = c, c, c.init
	case TypeRegex:
		c := &regexProc{FullMatch: true, KeepSourceIfParseError: true}
		dst, p, post = c, c, c.init
	case TypeSplitChar:
		c := &splitProc{char: true}
		dst, p, post = c, c, c.init
	case TypeSplitString:
		c := &splitProc{}
		dst, p, post = c, c, c.init
	case TypeFilterRegex:
		c := &filterProc{}
		dst, p, post = c, c, c.init
	case TypeAddFields:
		c := &addFieldsProc{}
		dst, p, post = c, c, c.init
	case TypeDrop:
		c := &dropProc{}
		dst, p, post = c, c, func() error { return nil }
	case TypeRename:
		c := &renameProc{}
		dst, p, post = c, c, c.init
	case "":
		return nil, nil, fmt.Errorf("%s.type is empty: name the processor, e.g. %q", at, TypeJSON)
	default:
		return nil, nil, fmt.Errorf("%s.type %q is not supported: this agent runs %s; parse in the collection config instead (logType) or drop the processor", at, it.Type, strings.Join(Types, ", "))
	}
	detail := it.Detail
	if len(detail) == 0 {
		detail = []byte("{}")
	}
	// encoding/json matches keys without regard to case, as Logtail's
	// plugin loader does.
	if err := json.Unmarshal(detail, dst); err != nil {
		return nil, nil, fmt.Errorf("%s.detail: %v", at, err)
	}
	if err := post(); err != nil {
		return nil, nil, fmt.Errorf("%s (%s).detail.%w", at, it.Type, err)
	}
	return p, unknownKeys(at, detail, dst), nil
}

// unknownKeys lists detail keys no field of dst takes (they would be
// ignored silently otherwise).
func unknownKeys(at string, detail []byte, dst any) []string {
	var raw map[string]json.RawMessage
	if json.Unmarshal(detail, &raw) != nil {
		return nil
	}
	known := map[string]bool{}
	b, _ := json.Marshal(dst)
	var names map[string]json.RawMessage
	_ = json.Unmarshal(b, &names)
	for k := range names {
		known[strings.ToLower(k)] = true
	}
	var out []string
	for k := range raw {
		if !known[strings.ToLower(k)] {
			out = append(out, fmt.Sprintf("%s.detail.%s: unknown key, ignored", at, k))
		}
	}
	sort.Strings(out)
	return out
}

func find(fields []pipeline.Field, key string) int {
	for i := range fields {
		if fields[i].Key == key {
			return i
		}
	}
	return -1
}

func remove(fields []pipeline.Field, i int) []pipeline.Field {
	return append(fields[:i], fields[i+1:]...)
}

// --- processor_regex ---

type regexProc struct {
	SourceKey              string
	Regex                  string
	Keys                   []string
	NoKeyError             bool
	NoMatchError           bool
	KeepSource             bool
	FullMatch              bool
	KeepSourceIfParseError bool

	re *regexp.Regexp
}

func (p *regexProc) init() error {
	if p.SourceKey == "" {
		return fmt.Errorf("SourceKey is empty: name the field to parse, e.g. content")
	}
	expr := p.Regex
	if p.FullMatch {
		expr = `^(?:` + expr + `)$`
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return fmt.Errorf("Regex: %v", err)
	}
	if re.NumSubexp() != len(p.Keys) {
		return fmt.Errorf("Keys: the regex has %d capture groups but %d keys are given: name every group, in order", re.NumSubexp(), len(p.Keys))
	}
	p.re = re
	return nil
}

func (p *regexProc) report(f failure) bool {
	return f == failNoKey && p.NoKeyError || f == failNoMatch && p.NoMatchError
}

func (p *regexProc) process(w *worker, fields []pipeline.Field) ([]pipeline.Field, bool, failure) {
	i := find(fields, p.SourceKey)
	if i < 0 {
		return fields, true, failNoKey
	}
	v := fields[i].Value
	m := p.re.FindStringSubmatchIndex(v)
	if m == nil {
		if !p.KeepSourceIfParseError {
			fields = remove(fields, i)
		}
		return fields, true, failNoMatch
	}
	if !p.KeepSource {
		fields = remove(fields, i)
	}
	for k, key := range p.Keys {
		if s, e := m[2*k+2], m[2*k+3]; s >= 0 {
			fields = append(fields, pipeline.Field{Key: key, Value: v[s:e]})
		}
	}
	return fields, true, ""
}

// --- processor_json ---

type jsonProc struct {
	SourceKey              string
	NoKeyError             bool
	ExpandDepth            int
	ExpandConnector        string
	Prefix                 string
	KeepSource             bool
	UseSourceKeyAsPrefix   bool
	KeepSourceIfParseError bool
	IgnoreFirstConnector   bool
	ExpandArray            bool
}

func (p *jsonProc) init() error {
	if p.SourceKey == "" {
		return fmt.Errorf("SourceKey is empty: name the field holding the JSON, e.g. content")
	}
	if p.ExpandDepth < 0 {
		return fmt.Errorf("ExpandDepth %d is negative: use 0 (no limit), 1 (top level only) or more", p.ExpandDepth)
	}
	return nil
}

func (p *jsonProc) report(f failure) bool {
	return f == failNoKey && p.NoKeyError || f == failParseError
}

func (p *jsonProc) process(w *worker, fields []pipeline.Field) ([]pipeline.Field, bool, failure) {
	i := find(fields, p.SourceKey)
	if i < 0 {
		return fields, true, failNoKey
	}
	v, err := w.json.Parse(fields[i].Value)
	if err != nil || v.Type() != fastjson.TypeObject {
		if !p.KeepSourceIfParseError {
			fields = remove(fields, i)
		}
		return fields, true, failParseError
	}
	if !p.KeepSource {
		fields = remove(fields, i)
	}
	prefix := p.Prefix
	if p.UseSourceKeyAsPrefix {
		prefix += p.SourceKey
		if !p.IgnoreFirstConnector {
			prefix += p.ExpandConnector
		}
	}
	return p.expand(fields, v, prefix, 1), true, ""
}

// expand adds the members of object v, nested objects (and arrays with
// ExpandArray) flattened with the connector until ExpandDepth.
func (p *jsonProc) expand(fields []pipeline.Field, v *fastjson.Value, prefix string, depth int) []pipeline.Field {
	add := func(key string, m *fastjson.Value) {
		switch {
		case m.Type() == fastjson.TypeObject && (p.ExpandDepth == 0 || depth < p.ExpandDepth):
			fields = p.expand(fields, m, key+p.ExpandConnector, depth+1)
		case m.Type() == fastjson.TypeArray && p.ExpandArray && (p.ExpandDepth == 0 || depth < p.ExpandDepth):
			for j, e := range m.GetArray() {
				sub := key + "[" + strconv.Itoa(j) + "]"
				if e.Type() == fastjson.TypeObject {
					fields = p.expand(fields, e, sub+p.ExpandConnector, depth+1)
				} else {
					fields = append(fields, pipeline.Field{Key: sub, Value: jsonText(e)})
				}
			}
		default:
			fields = append(fields, pipeline.Field{Key: key, Value: jsonText(m)})
		}
	}
	v.GetObject().Visit(func(k []byte, m *fastjson.Value) { add(prefix+string(k), m) })
	return fields
}

// jsonText is a member's value as Logtail writes it: strings unquoted,
// null empty, anything else as compact JSON.
func jsonText(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeString:
		return string(v.GetStringBytes())
	case fastjson.TypeNull:
		return ""
	}
	return v.String()
}

// --- processor_split_char, processor_split_string ---

type splitProc struct {
	SourceKey       string
	SplitSep        string
	SplitKeys       []string
	QuoteFlag       bool   // split_char
	Quote           string // split_char
	PreserveOthers  bool   // split_string
	ExpandOthers    bool   // split_string
	ExpandKeyPrefix string // split_string
	NoKeyError      bool
	NoMatchError    bool
	KeepSource      bool

	char  bool
	quote byte
}

func (p *splitProc) init() error {
	if p.SourceKey == "" {
		return fmt.Errorf("SourceKey is empty: name the field to split, e.g. content")
	}
	if len(p.SplitKeys) == 0 {
		return fmt.Errorf("SplitKeys is empty: name the columns")
	}
	if p.char {
		if len(p.SplitSep) != 1 {
			return fmt.Errorf("SplitSep %q must be one character for processor_split_char (use processor_split_string for longer separators)", p.SplitSep)
		}
		if p.QuoteFlag {
			if p.Quote == "" {
				p.Quote = `"`
			}
			if len(p.Quote) != 1 {
				return fmt.Errorf("Quote %q must be one character", p.Quote)
			}
			p.quote = p.Quote[0]
		}
	} else if p.SplitSep == "" {
		return fmt.Errorf("SplitSep is empty: give the separator")
	}
	return nil
}

func (p *splitProc) report(f failure) bool {
	return f == failNoKey && p.NoKeyError || f == failNoMatch && p.NoMatchError
}

func (p *splitProc) process(w *worker, fields []pipeline.Field) ([]pipeline.Field, bool, failure) {
	i := find(fields, p.SourceKey)
	if i < 0 {
		return fields, true, failNoKey
	}
	v := fields[i].Value
	var cols []string
	var fail failure
	if p.char && p.quote != 0 {
		var ok bool
		if cols, ok = splitQuoted(w.cols[:0], v, p.SplitSep[0], p.quote); !ok {
			fail = failNoMatch
		}
	} else {
		cols = append(w.cols[:0], strings.Split(v, p.SplitSep)...)
	}
	w.cols = cols[:0]
	if fail == "" && len(cols) != len(p.SplitKeys) {
		fail = failNoMatch
	}
	if !p.KeepSource {
		fields = remove(fields, i)
	}
	for k, c := range cols {
		switch {
		case k < len(p.SplitKeys):
			fields = append(fields, pipeline.Field{Key: p.SplitKeys[k], Value: c})
		case p.ExpandOthers:
			fields = append(fields, pipeline.Field{Key: p.ExpandKeyPrefix + strconv.Itoa(k-len(p.SplitKeys)+1), Value: c})
		case p.PreserveOthers:
			fields = append(fields, pipeline.Field{Key: "_split_preserve_", Value: strings.Join(cols[k:], p.SplitSep)})
			return fields, true, fail
		default:
			return fields, true, fail
		}
	}
	return fields, true, fail
}

// splitQuoted splits s at sep outside quotes; a doubled quote inside quotes
// is one quote character. ok is false for an unterminated quote (the rest
// is then one column).
func splitQuoted(dst []string, s string, sep, quote byte) ([]string, bool) {
	var b strings.Builder
	inQuote, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && c == quote && i+1 < len(s) && s[i+1] == quote:
			b.WriteByte(quote)
			i++
		case c == quote && (inQuote || b.Len() == 0 && !quoted):
			inQuote = !inQuote
			quoted = true
		case c == sep && !inQuote:
			dst = append(dst, b.String())
			b.Reset()
			quoted = false
		default:
			b.WriteByte(c)
		}
	}
	dst = append(dst, b.String())
	return dst, !inQuote
}

// --- processor_filter_regex ---

type filterProc struct {
	Include map[string]string
	Exclude map[string]string

	include, exclude []keyRegex
}

type keyRegex struct {
	key string
	re  *regexp.Regexp
}

func (p *filterProc) init() error {
	compile := func(name string, m map[string]string) ([]keyRegex, error) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []keyRegex
		for _, k := range keys {
			re, err := regexp.Compile(`^(?:` + m[k] + `)$`)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %v", name, k, err)
			}
			out = append(out, keyRegex{k, re})
		}
		return out, nil
	}
	var err error
	if p.include, err = compile("Include", p.Include); err != nil {
		return err
	}
	if p.exclude, err = compile("Exclude", p.Exclude); err != nil {
		return err
	}
	if len(p.include)+len(p.exclude) == 0 {
		return fmt.Errorf("Include and Exclude are both empty: give field → regex pairs")
	}
	return nil
}

func (p *filterProc) report(failure) bool { return false }

// process keeps an event whose every Include field matches in full and no
// Exclude field matches.
func (p *filterProc) process(_ *worker, fields []pipeline.Field) ([]pipeline.Field, bool, failure) {
	for _, kr := range p.include {
		i := find(fields, kr.key)
		if i < 0 || !kr.re.MatchString(fields[i].Value) {
			return fields, false, failFiltered
		}
	}
	for _, kr := range p.exclude {
		if i := find(fields, kr.key); i >= 0 && kr.re.MatchString(fields[i].Value) {
			return fields, false, failFiltered
		}
	}
	return fields, true, ""
}

// --- processor_add_fields, processor_drop, processor_rename ---

type addFieldsProc struct {
	Fields        map[string]string
	IgnoreIfExist bool

	keys []string
}

func (p *addFieldsProc) init() error {
	if len(p.Fields) == 0 {
		return fmt.Errorf("Fields is empty: give the fields to add")
	}
	for k := range p.Fields {
		p.keys = append(p.keys, k)
	}
	sort.Strings(p.keys)
	return nil
}

func (p *addFieldsProc) report(failure) bool { return false }

func (p *addFieldsProc) process(_ *worker, fields []pipeline.Field) ([]pipeline.Field, bool, failure) {
	for _, k := range p.keys {
		if p.IgnoreIfExist && find(fields, k) >= 0 {
			continue
		}
		fields = append(fields, pipeline.Field{Key: k, Value: p.Fields[k]})
	}
	return fields, true, ""
}

type dropProc struct {
	DropKeys []string
}

func (p *dropProc) report(failure) bool { return false }

func (p *dropProc) process(_ *worker, fields []pipeline.Field) ([]pipeline.Field, bool, failure) {
	n := 0
	for _, f := range fields {
		drop := false
		for _, k := range p.DropKeys {
			if f.Key == k {
				drop = true
				break
			}
		}
		if !drop {
			fields[n] = f
			n++
		}
	}
	return fields[:n], true, ""
}

type renameProc struct {
	SourceKeys []string
	DestKeys   []string
	NoKeyError bool
}

func (p *renameProc) init() error {
	if len(p.SourceKeys) == 0 || len(p.SourceKeys) != len(p.DestKeys) {
		return fmt.Errorf("SourceKeys (%d) and DestKeys (%d) must be non-empty lists of the same length", len(p.SourceKeys), len(p.DestKeys))
	}
	return nil
}

func (p *renameProc) report(f failure) bool { return f == failNoKey && p.NoKeyError }

func (p *renameProc) process(_ *worker, fields []pipeline.Field) ([]pipeline.Field, bool, failure) {
	var fail failure
	for k, src := range p.SourceKeys {
		if i := find(fields, src); i >= 0 {
			fields[i].Key = p.DestKeys[k]
		} else {
			fail = failNoKey
		}
	}
	return fields, true, fail
}
