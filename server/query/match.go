package query

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/server/index"
)

// Log is one log as a Matcher reads it.
type Log struct {
	Time     int64
	Topic    string
	Source   string
	Tags     []KV // group tags, names without TagPrefix
	Contents []KV // in order; a repeated key's last value counts
}

// KV is a key and its value.
type KV struct{ Key, Value string }

// Matcher is a search evaluated in memory, with the meaning CompileSearch
// gives it over TypedColumnsSchema — the layout of server/store/duckdb —
// so a log matches here exactly when the store's query would return it
// (TestMatcherAgreesWithDuckDB). It serves logs at hand rather than in a
// store: the console's live tail filters the log groups it pulls by
// cursor. Keys are read as the store's columns hold them: typed values
// parsed as at ingestion, tags and json sub-keys by name, full text over
// the values the line index covers.
type Matcher struct {
	eval func(*matchLog) bool
	idx  *index.Config
	line *Tokenizer
	// fields: the keys with a field index and their types.
	fields map[string]string
}

// NewMatcher compiles a parsed search for idx (nil: a logstore without an
// index, full text with the default tokens). Errors are those
// CompileSearch gives for the same search and layout.
func NewMatcher(n Node, idx *index.Config) (*Matcher, error) {
	m := &Matcher{idx: idx, line: LineTokenizer(idx), fields: map[string]string{}}
	if idx != nil {
		for k, kc := range idx.Keys {
			m.fields[k] = normIndexType(kc.Type)
		}
	}
	// The compiler checks the search (same errors, same positions).
	if _, err := CompileSearch(n, TypedColumnsSchema(idx, m.lineColumn(), "tags")); err != nil {
		return nil, err
	}
	eval, err := m.node(n)
	if err != nil {
		return nil, err
	}
	m.eval = eval
	return m, nil
}

// lineColumn is the name TypedColumnsSchema gets for the full-text column:
// none when the index has no line section (and is not absent altogether).
func (m *Matcher) lineColumn() string {
	if m.idx != nil && m.idx.Line == nil {
		return ""
	}
	return ColLine
}

func normIndexType(t string) string {
	switch strings.ToLower(t) {
	case index.TypeLong, index.TypeDouble, index.TypeJSON:
		return strings.ToLower(t)
	}
	return index.TypeText
}

// Match reports whether the search matches l.
func (m *Matcher) Match(l *Log) bool {
	return m.eval(&matchLog{Log: l, m: m})
}

// matchLog is a log with what terms derive from it, built on first use.
type matchLog struct {
	*Log
	m       *Matcher
	line    []byte
	hasLine bool
}

func (l *matchLog) lineText() string {
	if !l.hasLine {
		l.hasLine = true
		var include, exclude map[string]bool
		if idx := l.m.idx; idx != nil && idx.Line != nil {
			include, exclude = setOf(idx.Line.IncludeKeys...), setOf(idx.Line.ExcludeKeys...)
			if len(idx.Line.IncludeKeys) == 0 {
				include = nil
			}
		}
		for _, kv := range l.Contents {
			if include != nil && !include[kv.Key] || include == nil && exclude[kv.Key] {
				continue
			}
			l.line = l.m.line.AppendValue(l.line, kv.Value)
		}
	}
	return string(l.line)
}

func (l *matchLog) content(key string) (string, bool) {
	for i := len(l.Contents) - 1; i >= 0; i-- {
		if l.Contents[i].Key == key {
			return strings.ToValidUTF8(l.Contents[i].Value, "\uFFFD"), true
		}
	}
	return "", false
}

// value is what the store's column holds for key as text: ok is false
// for SQL NULL.
type keyReader struct {
	text func(*matchLog) (string, bool)
	// num reads the key as a number (long/double columns as parsed at
	// ingestion, other keys as TRY_CAST(... AS DOUBLE)).
	num func(*matchLog) (float64, bool)
	typ string // index type ("" = text without a field index of its own)
	tok *Tokenizer
}

// reader mirrors TypedColumnsSchema's Key for key.
func (m *Matcher) reader(key string) keyReader {
	tok := m.line
	if cfg, ok := KeyConfig(m.idx, key); ok {
		tok = NewTokenizer(cfg.Token, cfg.CaseSensitive)
	}
	r := keyReader{tok: tok}
	switch {
	case key == ColTime:
		r.typ = index.TypeLong
		r.text = func(l *matchLog) (string, bool) { return strconv.FormatInt(l.Time, 10), true }
		r.num = func(l *matchLog) (float64, bool) { return float64(l.Time), true }
		return r
	case key == ColTopic:
		r.typ = index.TypeText
		r.text = func(l *matchLog) (string, bool) { return l.Topic, true }
	case key == ColSource:
		r.typ = index.TypeText
		r.text = func(l *matchLog) (string, bool) { return l.Source, true }
	case strings.HasPrefix(key, TagPrefix):
		name := key[len(TagPrefix):]
		r.typ = index.TypeText
		r.text = func(l *matchLog) (string, bool) {
			for _, t := range l.Tags {
				if t.Key == name {
					return t.Value, true
				}
			}
			return "", false
		}
	default:
		if t, ok := m.fields[key]; ok {
			r.typ = t
			switch t {
			case index.TypeLong:
				r.num = func(l *matchLog) (float64, bool) {
					v, ok := l.content(key)
					if !ok {
						return 0, false
					}
					// As the store converts at ingestion.
					if n, err := strconv.ParseInt(v, 10, 64); err == nil {
						return float64(n), true
					}
					if f, err := strconv.ParseFloat(v, 64); err == nil {
						return float64(int64(f)), true
					}
					return 0, false
				}
				r.text = func(l *matchLog) (string, bool) {
					n, ok := r.num(l)
					return strconv.FormatInt(int64(n), 10), ok
				}
			case index.TypeDouble:
				r.num = func(l *matchLog) (float64, bool) {
					v, ok := l.content(key)
					if !ok {
						return 0, false
					}
					f, err := strconv.ParseFloat(v, 64)
					return f, err == nil
				}
				r.text = func(l *matchLog) (string, bool) {
					f, ok := r.num(l)
					return strconv.FormatFloat(f, 'g', -1, 64), ok
				}
			default:
				r.text = func(l *matchLog) (string, bool) { return l.content(key) }
			}
			return r
		}
		parent, path, _ := jsonParent(m.idx, key)
		if cfg, ok := KeyConfig(m.idx, key); ok {
			r.typ = normIndexType(cfg.Type)
		}
		r.text = func(l *matchLog) (string, bool) {
			v, ok := l.content(parent)
			if !ok {
				return "", false
			}
			return jsonExtractString(v, path)
		}
	}
	if r.num == nil {
		text := r.text
		r.num = func(l *matchLog) (float64, bool) {
			v, ok := text(l)
			if !ok {
				return 0, false
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return r
}

// jsonExtractString is DuckDB's json_extract_string(doc, JSONPath(path)):
// a string as is, other values as JSON text, NULL for a missing path, a
// JSON null or a document that is not JSON.
func jsonExtractString(doc, path string) (string, bool) {
	var v any
	if json.Unmarshal([]byte(doc), &v) != nil {
		return "", false
	}
	for _, p := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = obj[p]; !ok {
			return "", false
		}
	}
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	}
	b, _ := json.Marshal(v)
	return string(b), true
}

// junction returns the operands of n, an *And (and) or an *Or.
func junction(n Node) (items []Node, and bool) {
	if a, ok := n.(*And); ok {
		return a.Items, true
	}
	return n.(*Or).Items, false
}

// allOrAny is the test that all of fs hold (and) or that any does.
func allOrAny[T any](fs []func(T) bool, and bool) func(T) bool {
	return func(x T) bool {
		for _, f := range fs {
			if f(x) != and {
				return !and
			}
		}
		return and
	}
}

func (m *Matcher) node(n Node) (func(*matchLog) bool, error) {
	switch n := n.(type) {
	case *All:
		return func(*matchLog) bool { return true }, nil
	case *And, *Or:
		items, and := junction(n)
		fs := make([]func(*matchLog) bool, len(items))
		for i, x := range items {
			f, err := m.node(x)
			if err != nil {
				return nil, err
			}
			fs[i] = f
		}
		return allOrAny(fs, and), nil
	case *Not:
		f, err := m.node(n.X)
		if err != nil {
			return nil, err
		}
		return func(l *matchLog) bool { return !f(l) }, nil
	case *Exists:
		r := m.reader(n.Key)
		if r.typ == index.TypeLong || r.typ == index.TypeDouble {
			return func(l *matchLog) bool { _, ok := r.num(l); return ok }, nil
		}
		return func(l *matchLog) bool { _, ok := r.text(l); return ok }, nil
	case *Compare:
		r := m.reader(n.Key)
		want := numArg(n.Value)
		return func(l *matchLog) bool {
			v, ok := r.num(l)
			return ok && compareNum(v, n.Op, want)
		}, nil
	case *Range:
		r := m.reader(n.Key)
		return func(l *matchLog) bool {
			v, ok := r.num(l)
			if !ok {
				return false
			}
			lo, hi := ">", "<"
			if n.LoIncl {
				lo = ">="
			}
			if n.HiIncl {
				hi = "<="
			}
			return (n.Lo == "" || compareNum(v, lo, numArg(n.Lo))) && (n.Hi == "" || compareNum(v, hi, numArg(n.Hi)))
		}, nil
	case *Term:
		return m.term(n)
	}
	return nil, errAt(0, "unknown search node %T", n)
}

// compareNum compares as DuckDB does a column with a literal: exactly for
// integers, as doubles otherwise; NaN is greater than every number.
func compareNum(v float64, op string, want any) bool {
	if math.IsNaN(v) {
		return cmpOp(1, op)
	}
	var w float64
	switch x := want.(type) {
	case int64:
		w = float64(x)
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 && x > -(1<<53) && x < 1<<53 {
			return cmpOp(int64(v)-x, op)
		}
	case float64:
		w = x
	}
	switch {
	case v < w:
		return cmpOp(-1, op)
	case v > w:
		return cmpOp(1, op)
	}
	return cmpOp(0, op)
}

func cmpOp(c int64, op string) bool {
	switch op {
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	}
	return c == 0 // "=", ":"
}

func (m *Matcher) term(t *Term) (func(*matchLog) bool, error) {
	if t.Key == "" {
		tt := tokenTest(m.line, t)
		test, err := tt.compile()
		if err != nil {
			return nil, err
		}
		return func(l *matchLog) bool { return test(l.lineText()) }, nil
	}
	r := m.reader(t.Key)
	if t.Value == "" {
		return func(l *matchLog) bool { v, ok := r.text(l); return ok && v == "" }, nil
	}
	if r.typ == index.TypeLong || r.typ == index.TypeDouble {
		want := numArg(t.Value)
		return func(l *matchLog) bool { v, ok := r.num(l); return ok && compareNum(v, "=", want) }, nil
	}
	tt := valueTest(r.tok, t)
	if tt.any {
		return func(l *matchLog) bool { _, ok := r.text(l); return ok }, nil
	}
	test, err := tt.compile()
	if err != nil {
		return nil, err
	}
	return func(l *matchLog) bool { v, ok := r.text(l); return ok && test(v) }, nil
}

// compile returns the test as a Go function of the text.
func (tt textTest) compile() (func(string) bool, error) {
	if tt.any {
		return func(string) bool { return true }, nil
	}
	if tt.re == "" {
		lit := tt.lit
		return func(s string) bool { return strings.Contains(s, lit) }, nil
	}
	re, err := regexp.Compile(tt.re)
	if err != nil {
		return nil, errAt(0, "pattern %q: %v", tt.re, err)
	}
	return re.MatchString, nil
}
