package query

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicelog/sluice/server/index"
)

// Expr is a SQL fragment with its positional parameters: every '?' in SQL
// (outside string literals) takes the next element of Args.
type Expr struct {
	SQL  string
	Args []any

	// origin maps a statement made by SandboxSQL back to the query text:
	// where each emitted token starts in SQL and in the text.
	origin []span
}

// span is one emitted token of a sandboxed statement: at out, outN bytes
// of Expr.SQL; at src, n bytes of the text the user wrote.
type span struct{ out, outN, src, n int }

// QueryPos returns the byte offset in the query text (the SQL part given
// to SandboxSQL, or the whole query for Query.SandboxSQL) of the token
// at byte off of e.SQL, so a database error pointing into the statement
// can be shown in what the user wrote. ok is false for offsets outside
// the user's tokens (the store's own part of the statement).
func (e Expr) QueryPos(off int) (pos int, ok bool) {
	i := sort.Search(len(e.origin), func(i int) bool { return e.origin[i].out > off }) - 1
	if i < 0 {
		return 0, false
	}
	sp := e.origin[i]
	if off >= sp.out+sp.outN {
		return 0, false // between tokens, or in text the sandbox added
	}
	// Within the token as written (rewritten tokens map to their start).
	return sp.src + min(off-sp.out, max(sp.n-1, 0)), true
}

// KeyColumns tells the compiler how to read one key of a log row.
type KeyColumns struct {
	// Value is the key's value as VARCHAR, NULL when the log lacks the key.
	// Required.
	Value Expr
	// Tokens, if set, is the key's token text (Tokenizer.AppendValue
	// format) and is used for key:term matching; otherwise the compiler
	// matches tokens in Value with a regular expression.
	Tokens Expr
	// Number, if set, is the key's numeric value (NULL when absent or not
	// a number); otherwise TRY_CAST(Value AS DOUBLE).
	Number Expr
	// Type overrides the index type of the key (index.TypeLong ...).
	Type string
}

// Schema describes how a store lays out a logstore's rows, for
// CompileSearch.
type Schema struct {
	// Index is the logstore's index (token sets, case sensitivity, key
	// types); nil = defaults (full-text with index.DefaultTokens).
	Index *index.Config
	// Line is the log's full-text token text, built with
	// LineTokenizer(Index).AppendValue over the values the full-text
	// index covers. Empty: full-text terms are an error.
	Line Expr
	// Key returns how to read key (a content key, "__topic__",
	// "__source__", "__time__", or TagPrefix+name). It may return an
	// error for keys the store cannot search; that error is reported at
	// the term's position.
	Key func(key string) (KeyColumns, error)
}

// CompileSearch compiles a parsed search into a SQL boolean expression
// over one row of s. User values only ever reach SQL as parameters.
// A leaf never yields NULL (missing keys are false), so NOT behaves as
// users expect: `not level:error` matches logs without a level.
func CompileSearch(n Node, s Schema) (Expr, error) {
	c := &compiler{s: s, line: LineTokenizer(s.Index)}
	var b sqlBuf
	if err := c.node(&b, n); err != nil {
		return Expr{}, err
	}
	return Expr{SQL: b.b.String(), Args: b.args}, nil
}

type sqlBuf struct {
	b    strings.Builder
	args []any
}

func (s *sqlBuf) sql(parts ...string) {
	for _, p := range parts {
		s.b.WriteString(p)
	}
}
func (s *sqlBuf) expr(e Expr) { s.b.WriteString(e.SQL); s.args = append(s.args, e.Args...) }
func (s *sqlBuf) arg(v any)   { s.b.WriteByte('?'); s.args = append(s.args, v) }

type compiler struct {
	s    Schema
	line *Tokenizer
}

func (c *compiler) node(b *sqlBuf, n Node) error {
	switch n := n.(type) {
	case *All:
		b.sql("TRUE")
	case *And, *Or:
		items, and := junction(n)
		op := " OR "
		if and {
			op = " AND "
		}
		b.sql("(")
		for i, x := range items {
			if i > 0 {
				b.sql(op)
			}
			if err := c.node(b, x); err != nil {
				return err
			}
		}
		b.sql(")")
	case *Not:
		b.sql("(NOT ")
		if err := c.node(b, n.X); err != nil {
			return err
		}
		b.sql(")")
	case *Term:
		return c.term(b, n)
	case *Exists:
		kc, err := c.key(n.Key, n.Pos)
		if err != nil {
			return err
		}
		b.sql("(")
		b.expr(kc.Value)
		b.sql(" IS NOT NULL)")
	case *Compare:
		kc, err := c.numericKey(n.Key, n.Pos)
		if err != nil {
			return err
		}
		op := n.Op
		b.sql("COALESCE(")
		b.expr(kc.Number)
		b.sql(" ", op, " ")
		b.arg(numArg(n.Value))
		b.sql(", FALSE)")
	case *Range:
		kc, err := c.numericKey(n.Key, n.Pos)
		if err != nil {
			return err
		}
		if n.Lo == "" && n.Hi == "" {
			b.sql("(")
			b.expr(kc.Number)
			b.sql(" IS NOT NULL)")
			return nil
		}
		b.sql("COALESCE(")
		if n.Lo != "" {
			b.expr(kc.Number)
			b.sql(map[bool]string{true: " >= ", false: " > "}[n.LoIncl])
			b.arg(numArg(n.Lo))
		}
		if n.Hi != "" {
			if n.Lo != "" {
				b.sql(" AND ")
			}
			b.expr(kc.Number)
			b.sql(map[bool]string{true: " <= ", false: " < "}[n.HiIncl])
			b.arg(numArg(n.Hi))
		}
		b.sql(", FALSE)")
	default:
		return fmt.Errorf("query: unknown node %T", n)
	}
	return nil
}

func numArg(s string) any {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

func (c *compiler) key(key string, pos int) (KeyColumns, error) {
	if c.s.Key == nil {
		return KeyColumns{}, errAt(pos, "key search is not supported by this store")
	}
	kc, err := c.s.Key(key)
	if err != nil {
		return KeyColumns{}, errAt(pos, "%v", err)
	}
	if kc.Value.SQL == "" {
		return KeyColumns{}, errAt(pos, "key %q cannot be searched", key)
	}
	if kc.Type == "" {
		if cfg, ok := KeyConfig(c.s.Index, key); ok {
			kc.Type = cfg.Type
		}
	}
	if kc.Number.SQL == "" {
		kc.Number = Expr{SQL: "TRY_CAST(" + kc.Value.SQL + " AS DOUBLE)", Args: kc.Value.Args}
	}
	return kc, nil
}

func (c *compiler) numericKey(key string, pos int) (KeyColumns, error) {
	kc, err := c.key(key, pos)
	if err != nil {
		return kc, err
	}
	if kc.Type == index.TypeText || kc.Type == index.TypeJSON {
		return kc, errAt(pos, "key %q is indexed as %s: comparisons and ranges need a long or double field index", key, kc.Type)
	}
	return kc, nil
}

// KeyConfig finds key's field index: an exact key, or "a.b" under a json
// key "a" (json_keys). Tag and reserved keys have none.
func KeyConfig(idx *index.Config, key string) (index.KeyConfig, bool) {
	if idx == nil {
		return index.KeyConfig{}, false
	}
	if kc, ok := idx.Keys[key]; ok {
		return kc, true
	}
	parent, rest, ok := strings.Cut(key, ".")
	for ok {
		if pc, found := idx.Keys[parent]; found && pc.Type == index.TypeJSON {
			if sub, found := lookupJSON(pc.JSONKeys, rest); found {
				return sub, true
			}
			return index.KeyConfig{Type: index.TypeText, Token: pc.Token, CaseSensitive: pc.CaseSensitive}, true
		}
		var more string
		more, rest, ok = strings.Cut(rest, ".")
		parent += "." + more
	}
	return index.KeyConfig{}, false
}

func lookupJSON(keys map[string]index.KeyConfig, path string) (index.KeyConfig, bool) {
	if kc, ok := keys[path]; ok {
		return kc, true
	}
	head, rest, ok := strings.Cut(path, ".")
	for ok {
		if kc, found := keys[head]; found && kc.Type == index.TypeJSON {
			return lookupJSON(kc.JSONKeys, rest)
		}
		var more string
		more, rest, ok = strings.Cut(rest, ".")
		head += "." + more
	}
	return index.KeyConfig{}, false
}

func (c *compiler) term(b *sqlBuf, t *Term) error {
	if t.Key == "" {
		if c.s.Line.SQL == "" {
			return errAt(t.Pos, "full-text search needs a full-text (line) index on this logstore; search key:value instead")
		}
		return c.tokenMatch(b, c.s.Line, c.line, t)
	}
	kc, err := c.key(t.Key, t.Pos)
	if err != nil {
		return err
	}
	if t.Value == "" {
		b.sql("COALESCE(")
		b.expr(kc.Value)
		b.sql(" = '', FALSE)")
		return nil
	}
	if kc.Type == index.TypeLong || kc.Type == index.TypeDouble {
		if len(t.Wild) > 0 {
			return errAt(t.Pos, "wildcards are not allowed on %s key %q: use a comparison or range, e.g. %s in [200 299]", kc.Type, t.Key, quoteKey(t.Key))
		}
		if !isNumber(t.Value) {
			return errAt(t.Pos, "key %q is indexed as %s: %q is not a number", t.Key, kc.Type, t.Value)
		}
		b.sql("COALESCE(")
		b.expr(kc.Number)
		b.sql(" = ")
		b.arg(numArg(t.Value))
		b.sql(", FALSE)")
		return nil
	}
	tok := c.line
	if cfg, ok := KeyConfig(c.s.Index, t.Key); ok {
		tok = NewTokenizer(cfg.Token, cfg.CaseSensitive)
	}
	if kc.Tokens.SQL != "" {
		return c.tokenMatch(b, kc.Tokens, tok, t)
	}
	return c.valueMatch(b, kc.Value, tok, t)
}

// textTest is how a term's value is looked for in a text: anything
// (the value has only delimiters), a substring, or an RE2 pattern (with,
// for raw values, a substring the value must contain as a cheap test
// first). CompileSearch renders it as SQL and Matcher runs it in Go, so
// both agree by construction.
type textTest struct {
	any bool   // no token to look for
	lit string // contains(text, lit), when re is empty
	re  string // regexp_matches(text, re)
	pre string // raw values: lower(text) (or text, case-sensitive) contains pre
	// fold: pre is compared with the lowercased text.
	fold bool
}

// tokenTest matches t against a token text (AppendValue format: " tok
// tok " per value).
func tokenTest(tok *Tokenizer, t *Term) textTest {
	toks := tok.splitPattern(t.Value, t.Wild)
	if len(toks) == 0 {
		return textTest{any: true}
	}
	// Fast path: no wildcard except a trailing '*' → one substring test.
	var lit strings.Builder
	simple := true
	for i, pt := range toks {
		lit.WriteByte(' ')
		for _, w := range pt.wild {
			if i != len(toks)-1 || w != len(pt.text)-1 || pt.text[w] != '*' {
				simple = false
			}
		}
		if len(pt.wild) > 0 {
			lit.WriteString(pt.text[:len(pt.text)-1]) // the trailing '*' (checked above)
		} else {
			lit.WriteString(pt.text)
		}
	}
	last := toks[len(toks)-1]
	prefix := len(last.wild) > 0
	if simple {
		if !prefix {
			lit.WriteByte(' ')
		}
		return textTest{lit: lit.String()}
	}
	var re strings.Builder
	for _, pt := range toks {
		re.WriteByte(' ')
		writePattern(&re, pt, "[^ ]")
	}
	re.WriteByte(' ')
	return textTest{re: re.String()}
}

// tokenMatch matches t against a token text column (AppendValue format).
func (c *compiler) tokenMatch(b *sqlBuf, col Expr, tok *Tokenizer, t *Term) error {
	tt := tokenTest(tok, t)
	switch {
	case tt.any:
		b.sql("TRUE") // only delimiters: nothing to look for
	case tt.re == "":
		b.sql("COALESCE(contains(")
		b.expr(col)
		b.sql(", ")
		b.arg(tt.lit)
		b.sql("), FALSE)")
	default:
		b.sql("COALESCE(regexp_matches(")
		b.expr(col)
		b.sql(", ")
		b.arg(tt.re)
		b.sql("), FALSE)")
	}
	return nil
}

// writePattern writes pt as RE2 with '*' → notDelim* and '?' → notDelim.
func writePattern(re *strings.Builder, pt patTok, notDelim string) {
	prev := 0
	for _, w := range pt.wild {
		re.WriteString(regexp.QuoteMeta(pt.text[prev:w]))
		if pt.text[w] == '*' {
			re.WriteString(notDelim + "*")
		} else {
			re.WriteString(notDelim)
		}
		prev = w + 1
	}
	re.WriteString(regexp.QuoteMeta(pt.text[prev:]))
}

// valueTest matches t's tokens inside a raw value with an RE2 pattern
// built from the key's delimiters.
func valueTest(tok *Tokenizer, t *Term) textTest {
	toks := tok.splitPattern(t.Value, t.Wild)
	if len(toks) == 0 {
		return textTest{any: true}
	}
	class := tok.delimClass()
	var re strings.Builder
	re.WriteString("(?s)")
	if !tok.caseSensitive {
		re.WriteString("(?i)")
	}
	re.WriteString("(?:^|[" + class + "])")
	for i, pt := range toks {
		if i > 0 {
			re.WriteString("[" + class + "]+")
		}
		writePattern(&re, pt, "[^"+class+"]")
	}
	re.WriteString("(?:[" + class + "]|$)")
	tt := textTest{re: re.String(), fold: !tok.caseSensitive}
	if lit := longestLiteral(toks); len(lit) >= 2 {
		tt.pre = lit
	}
	return tt
}

// valueMatch matches t's tokens inside a raw VARCHAR value.
func (c *compiler) valueMatch(b *sqlBuf, col Expr, tok *Tokenizer, t *Term) error {
	tt := valueTest(tok, t)
	if tt.any {
		b.sql("(")
		b.expr(col)
		b.sql(" IS NOT NULL)")
		return nil
	}
	b.sql("COALESCE(")
	// A substring test first lets DuckDB skip the regular expression
	// (several times slower, its pattern being a parameter) on most rows.
	if tt.pre != "" {
		b.sql("contains(")
		if tt.fold {
			b.sql("lower(")
			b.expr(col)
			b.sql(")")
		} else {
			b.expr(col)
		}
		b.sql(", ")
		b.arg(tt.pre)
		b.sql(") AND ")
	}
	b.sql("regexp_matches(")
	b.expr(col)
	b.sql(", ")
	b.arg(tt.re)
	b.sql("), FALSE)")
	return nil
}

// longestLiteral returns the longest wildcard-free ASCII run in toks (the
// tokens are already lowercased unless case sensitive). ASCII only, so
// DuckDB's lower() and Go's agree on it.
func longestLiteral(toks []patTok) string {
	best := ""
	for _, pt := range toks {
		start := 0
		cut := func(end int) {
			if seg := pt.text[start:end]; len(seg) > len(best) {
				best = seg
			}
		}
		for i := 0; i < len(pt.text); i++ {
			c := pt.text[i]
			isWild := slices.Contains(pt.wild, i)
			if isWild || c >= utf8.RuneSelf {
				cut(i)
				start = i + 1
			}
		}
		cut(len(pt.text))
	}
	return best
}

// delimClass returns the delimiters as the inside of an RE2 character
// class, every character written as \x{...} so none is special.
func (t *Tokenizer) delimClass() string {
	b := make([]byte, 0, 256)
	add := func(r rune) {
		b = append(b, `\x{`...)
		b = strconv.AppendInt(b, int64(r), 16)
		b = append(b, '}')
	}
	for r := rune(0); r < 128; r++ {
		if t.ascii[r] {
			add(r)
		}
	}
	other := make([]rune, 0, len(t.other))
	for r := range t.other {
		other = append(other, r)
	}
	slices.Sort(other) // stable SQL text
	for _, r := range other {
		add(r)
	}
	return string(b)
}
