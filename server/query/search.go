package query

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicelog/sluice/server/store"
)

// Error is a query error at a byte offset of the text that was parsed
// (Parse: the whole query; SandboxSQL: the SQL it was given). The console
// shows Msg at Pos. Error matches store.ErrInvalidQuery with errors.Is,
// and also store.ErrQueryLimit when Limit names the limit the query went
// over (a Limits field's flag-style name, e.g. "max-ctes").
type Error struct {
	Pos int
	Msg string
	// Kind names the error in its text: "syntax error" when empty; a
	// store reports SQL its database refused, placed in the query with
	// Expr.QueryPos, as "SQL error".
	Kind string
	// Limit names the query limit the query went over (a flag-style
	// name, e.g. "max-ctes"); the text is then "query limit <Limit>".
	Limit string
}

func (e *Error) Error() string {
	kind := e.Kind
	switch {
	case e.Limit != "":
		kind = "query limit " + e.Limit
	case kind == "":
		kind = "syntax error"
	}
	return fmt.Sprintf("%s at %d: %s", kind, e.Pos, e.Msg)
}

func errAt(pos int, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Node is a parsed search expression: *All, *And, *Or, *Not, *Term,
// *Exists, *Compare or *Range.
type Node interface {
	// String renders the node in the search syntax; parsing the result
	// yields an equivalent tree.
	String() string
	node()
}

// All matches every log (`*` or an empty search).
type All struct{}

// And matches logs every operand matches.
type And struct{ Items []Node }

// Or matches logs any operand matches.
type Or struct{ Items []Node }

// Not matches logs its operand does not match.
type Not struct{ X Node }

// Term is a full-text term (Key == "") or key:value. Value is unescaped.
// Wild holds the byte offsets in Value of the unescaped `*` and `?`
// wildcards; the other characters are literal.
type Term struct {
	Key    string
	Value  string
	Phrase bool // written in double quotes
	Wild   []int
	Pos    int // offset of the term (its key if any) in the query
}

// Exists is `key:*`: the key is present.
type Exists struct {
	Key string
	Pos int
}

// Compare is `key > 10` (Op is one of > >= < <= =); Value is the number
// as written.
type Compare struct {
	Key   string
	Op    string
	Value string
	Pos   int
}

// Range is `key in [lo hi]`, `(lo hi]` ...; an empty bound (written `*`)
// is unbounded.
type Range struct {
	Key            string
	Lo, Hi         string
	LoIncl, HiIncl bool
	Pos            int
}

func (*All) node()     {}
func (*And) node()     {}
func (*Or) node()      {}
func (*Not) node()     {}
func (*Term) node()    {}
func (*Exists) node()  {}
func (*Compare) node() {}
func (*Range) node()   {}

func (*All) String() string { return "*" }
func (n *And) String() string {
	parts := make([]string, len(n.Items))
	for i, x := range n.Items {
		parts[i] = paren(x)
	}
	return strings.Join(parts, " and ")
}
func (n *Or) String() string {
	parts := make([]string, len(n.Items))
	for i, x := range n.Items {
		parts[i] = paren(x)
	}
	return strings.Join(parts, " or ")
}
func (n *Not) String() string { return "not " + paren(n.X) }
func (n *Term) String() string {
	var b strings.Builder
	if n.Key != "" {
		b.WriteString(quoteKey(n.Key))
		b.WriteByte(':')
	}
	wild := map[int]bool{}
	for _, w := range n.Wild {
		wild[w] = true
	}
	if n.Phrase || n.Value == "" {
		b.WriteByte('"')
		for i, r := range n.Value {
			if (r == '"' || r == '\\') || ((r == '*' || r == '?') && !wild[i]) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
		return b.String()
	}
	for i, r := range n.Value {
		if isWordBreak(r) || r == '\\' || ((r == '*' || r == '?') && !wild[i]) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	s := b.String()
	if n.Key == "" && isKeyword(n.Value) {
		return `"` + s + `"`
	}
	return s
}
func (n *Exists) String() string  { return quoteKey(n.Key) + ":*" }
func (n *Compare) String() string { return quoteKey(n.Key) + " " + n.Op + " " + n.Value }
func (n *Range) String() string {
	lo, hi := n.Lo, n.Hi
	if lo == "" {
		lo = "*"
	}
	if hi == "" {
		hi = "*"
	}
	l, r := "(", ")"
	if n.LoIncl {
		l = "["
	}
	if n.HiIncl {
		r = "]"
	}
	return quoteKey(n.Key) + " in " + l + lo + " " + hi + r
}

func paren(n Node) string {
	switch n.(type) {
	case *And, *Or:
		return "(" + n.String() + ")"
	}
	return n.String()
}

func quoteKey(k string) string {
	if rest, ok := strings.CutPrefix(k, TagPrefix); ok && rest != "" {
		return "__tag__:" + quoteKey(rest)
	}
	simple := k != "" && !isKeyword(k)
	for _, r := range k {
		if isWordBreak(r) || r == '\\' || r == '*' || r == '?' {
			simple = false
		}
	}
	if simple {
		return k
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range k {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// TagPrefix starts the key of a tag: `__tag__:__path__:x` is Term{Key:
// "__tag__:__path__", Value: "x"}.
const TagPrefix = "__tag__:"

// Query is a parsed "search | SQL" query.
type Query struct {
	Text       string // the whole query as given
	Search     Node   // the search part; *All for "" and "*"
	SearchText string // the search part as written, trimmed
	SQL        string // the SQL after the first top-level '|', trimmed; "" = none
	HasSQL     bool   // a '|' was present
	SQLOffset  int    // byte offset of SQL in Text (add to SandboxSQL error positions)
}

// Parse splits text at its first '|' outside a quoted string and parses
// the search part. The SQL part is only split off; SandboxSQL (or
// Query.SandboxSQL) checks it.
func Parse(text string) (*Query, error) {
	cut := splitPipe(text)
	q := &Query{Text: text}
	search := text
	if cut >= 0 {
		search = text[:cut]
		q.HasSQL = true
		rest := text[cut+1:]
		trimmed := strings.TrimLeft(rest, " \t\r\n")
		q.SQLOffset = cut + 1 + len(rest) - len(trimmed)
		q.SQL = strings.TrimRight(trimmed, " \t\r\n")
		if q.SQL == "" {
			return nil, errAt(cut, "nothing after '|': write a SQL statement such as `select count(*) as c`")
		}
	}
	n, err := ParseSearch(search)
	if err != nil {
		return nil, err
	}
	q.Search = n
	q.SearchText = strings.TrimSpace(search)
	return q, nil
}

// splitPipe returns the offset of the first '|' outside double quotes and
// not escaped, or -1.
func splitPipe(s string) int {
	inQ := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQ = !inQ
		case '|':
			if !inQ {
				return i
			}
		}
	}
	return -1
}

// ParseSearch parses the search syntax of docs/log-service-api.md §5 (no '|').
func ParseSearch(text string) (Node, error) {
	p := &parser{src: text}
	if err := p.lex(); err != nil {
		return nil, err
	}
	if p.peek().kind == tEOF {
		return &All{}, nil
	}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, errAt(t.pos, "unexpected %s", t.describe())
	}
	return n, nil
}

type tokKind int

const (
	tEOF    tokKind = iota
	tWord           // bare word (may contain wildcards)
	tQuoted         // "..."
	tLParen
	tRParen
	tLBrack
	tRBrack
	tColon
	tOp // > >= < <= =
)

type token struct {
	kind tokKind
	pos  int
	end  int    // offset after the token
	text string // unescaped value for words/quoted, operator text
	wild []int  // wildcard offsets in text (words only)
	raw  string // as written
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of query"
	case tQuoted:
		return strconv.Quote(t.raw)
	}
	return fmt.Sprintf("%q", t.raw)
}

type parser struct {
	src  string
	toks []token
	i    int
}

func isWordBreak(r rune) bool {
	switch r {
	case ' ', '\t', '\r', '\n', '(', ')', '[', ']', '"', ':', '<', '>', '=', '|':
		return true
	}
	return false
}

func isKeyword(s string) bool {
	switch strings.ToLower(s) {
	case "and", "or", "not":
		return true
	}
	return false
}

func (p *parser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return errAt(i, "invalid UTF-8")
		}
		switch {
		case r == ' ' || r == '\t' || r == '\r' || r == '\n':
			i += size
		case r == '(' || r == ')' || r == '[' || r == ']' || r == ':':
			k := map[rune]tokKind{'(': tLParen, ')': tRParen, '[': tLBrack, ']': tRBrack, ':': tColon}[r]
			p.toks = append(p.toks, token{kind: k, pos: i, end: i + 1, raw: s[i : i+1]})
			i++
		case r == '<' || r == '>' || r == '=':
			j := i + 1
			if r != '=' && j < len(s) && s[j] == '=' {
				j++
			}
			p.toks = append(p.toks, token{kind: tOp, pos: i, end: j, text: s[i:j], raw: s[i:j]})
			i = j
		case r == '|':
			return errAt(i, `unexpected "|"`)
		case r == '"':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(s) {
				c := s[j]
				if c == '\\' {
					if j+1 >= len(s) {
						return errAt(j, "escape \\ at end of query")
					}
					_, sz := utf8.DecodeRuneInString(s[j+1:])
					b.WriteString(s[j+1 : j+1+sz])
					j += 1 + sz
					continue
				}
				if c == '"' {
					closed = true
					j++
					break
				}
				b.WriteByte(c)
				j++
			}
			if !closed {
				return errAt(i, "unterminated quoted string: add a closing \"")
			}
			if !utf8.ValidString(b.String()) {
				return errAt(i, "invalid UTF-8")
			}
			p.toks = append(p.toks, token{kind: tQuoted, pos: i, end: j, text: b.String(), raw: s[i:j]})
			i = j
		default:
			var b strings.Builder
			var wild []int
			j := i
			for j < len(s) {
				r, sz := utf8.DecodeRuneInString(s[j:])
				if r == utf8.RuneError && sz == 1 {
					return errAt(j, "invalid UTF-8")
				}
				if isWordBreak(r) {
					break
				}
				if r == '\\' {
					if j+1 >= len(s) {
						return errAt(j, "escape \\ at end of query")
					}
					r2, sz2 := utf8.DecodeRuneInString(s[j+1:])
					if r2 == utf8.RuneError && sz2 == 1 {
						return errAt(j+1, "invalid UTF-8")
					}
					b.WriteRune(r2)
					j += 1 + sz2
					continue
				}
				if r == '*' || r == '?' {
					wild = append(wild, b.Len())
				}
				b.WriteRune(r)
				j += sz
			}
			p.toks = append(p.toks, token{kind: tWord, pos: i, end: j, text: b.String(), wild: wild, raw: s[i:j]})
			i = j
		}
	}
	p.toks = append(p.toks, token{kind: tEOF, pos: len(s), end: len(s)})
	return nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekAt(k int) token {
	if p.i+k < len(p.toks) {
		return p.toks[p.i+k]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (t token) isKW(kw string) bool {
	return t.kind == tWord && len(t.wild) == 0 && strings.EqualFold(t.raw, kw)
}

// Precedence (docs/log-service-api.md §5): ':' > quotes > parentheses > and/not > or.
func (p *parser) parseOr() (Node, error) {
	first, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	items := []Node{first}
	for p.peek().isKW("or") {
		p.next()
		n, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		items = append(items, n)
	}
	if len(items) == 1 {
		return first, nil
	}
	return &Or{Items: items}, nil
}

// startsOperand reports whether t can begin an operand (for implicit and).
func startsOperand(t token) bool {
	switch t.kind {
	case tWord:
		return !t.isKW("and") && !t.isKW("or")
	case tQuoted, tLParen:
		return true
	}
	return false
}

func (p *parser) parseAnd() (Node, error) {
	first, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	items := []Node{first}
	for {
		t := p.peek()
		switch {
		case t.isKW("and"):
			p.next()
			n, err := p.parseUnary()
			if err != nil {
				return nil, err
			}
			items = append(items, n)
		case t.isKW("not"):
			// "a not b" = a and not b.
			p.next()
			n, err := p.parseUnary()
			if err != nil {
				return nil, err
			}
			items = append(items, &Not{X: n})
		case startsOperand(t):
			n, err := p.parseUnary()
			if err != nil {
				return nil, err
			}
			items = append(items, n)
		default:
			if len(items) == 1 {
				return first, nil
			}
			return &And{Items: items}, nil
		}
	}
}

func (p *parser) parseUnary() (Node, error) {
	if p.peek().isKW("not") {
		p.next()
		n, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return &Not{X: n}, nil
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (Node, error) {
	t := p.peek()
	switch t.kind {
	case tLParen:
		p.next()
		if p.peek().kind == tRParen {
			return nil, errAt(p.peek().pos, `empty parentheses: put a search term inside "()"`)
		}
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c.kind != tRParen {
			return nil, errAt(c.pos, "expected \")\" to close \"(\" at %d, found %s", t.pos, c.describe())
		}
		p.next()
		return n, nil
	case tWord, tQuoted:
		if t.isKW("and") || t.isKW("or") || t.isKW("not") {
			return nil, errAt(t.pos, "unexpected %s: an operator needs a search term (quote it to search the word)", t.describe())
		}
		return p.parseAtom()
	case tEOF:
		return nil, errAt(t.pos, "unexpected end of query: a search term is missing")
	}
	return nil, errAt(t.pos, "unexpected %s", t.describe())
}

func (p *parser) parseAtom() (Node, error) {
	t := p.next()
	nx := p.peek()
	switch {
	case nx.kind == tColon:
		return p.parseKeyValue(t)
	case nx.kind == tOp:
		return p.parseCompare(t)
	case nx.isKW("in") && (p.peekAt(1).kind == tLBrack || p.peekAt(1).kind == tLParen):
		if n, ok := p.tryRange(t); ok {
			return n, nil
		}
	}
	if t.kind == tWord && t.text == "*" && len(t.wild) == 1 {
		return &All{}, nil
	}
	return p.term("", t, t.pos)
}

// term builds a Term from a word or quoted token.
func (p *parser) term(key string, t token, pos int) (Node, error) {
	if t.kind == tQuoted {
		return &Term{Key: key, Value: t.text, Phrase: true, Pos: pos}, nil
	}
	if len(t.wild) > 0 && t.wild[0] == 0 {
		return nil, errAt(t.pos, "wildcard %q at the start of a word is not allowed: put at least one character before it", t.text[:1])
	}
	return &Term{Key: key, Value: t.text, Wild: t.wild, Pos: pos}, nil
}

func keyName(t token) (string, error) {
	if t.kind == tWord && len(t.wild) > 0 {
		return "", errAt(t.pos, "wildcard in key name %q: quote the key or escape the wildcard with \\", t.raw)
	}
	if t.text == "" {
		return "", errAt(t.pos, "empty key name")
	}
	return t.text, nil
}

func (p *parser) parseKeyValue(kt token) (Node, error) {
	key, err := keyName(kt)
	if err != nil {
		return nil, err
	}
	p.next() // ':'
	if key == "__tag__" {
		nt := p.peek()
		if nt.kind != tWord && nt.kind != tQuoted {
			return nil, errAt(nt.pos, "expected a tag name after \"__tag__:\", e.g. __tag__:__path__:/var/log/app.log")
		}
		p.next()
		name, err := keyName(nt)
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c.kind != tColon {
			return nil, errAt(c.pos, "expected \":\" after tag name %q, e.g. __tag__:%s:value", name, name)
		}
		p.next()
		key = TagPrefix + name
	}
	vt := p.peek()
	if vt.kind != tWord && vt.kind != tQuoted {
		return nil, errAt(vt.pos, "expected a value after \"%s:\", found %s", key, vt.describe())
	}
	p.next()
	if vt.kind == tWord && vt.text == "*" && len(vt.wild) == 1 {
		return &Exists{Key: key, Pos: kt.pos}, nil
	}
	// A bare value may contain ':' (time:10:20:30); ':' is a token
	// delimiter, so the joined value still matches token by token.
	for vt.kind == tWord && p.peek().kind == tColon && p.peek().pos == vt.end &&
		p.peekAt(1).kind == tWord && p.peekAt(1).pos == p.peek().end {
		p.next()
		w := p.next()
		for _, o := range w.wild {
			vt.wild = append(vt.wild, len(vt.text)+1+o)
		}
		vt.text += ":" + w.text
		vt.raw = p.src[vt.pos:w.end]
		vt.end = w.end
	}
	return p.term(key, vt, kt.pos)
}

func (p *parser) parseCompare(kt token) (Node, error) {
	key, err := keyName(kt)
	if err != nil {
		return nil, err
	}
	op := p.next()
	vt := p.peek()
	if vt.kind != tWord || !isNumber(vt.text) || len(vt.wild) > 0 {
		return nil, errAt(vt.pos, "expected a number after \"%s %s\", found %s", key, op.text, vt.describe())
	}
	p.next()
	return &Compare{Key: key, Op: op.text, Value: vt.text, Pos: kt.pos}, nil
}

// tryRange parses `key in [lo hi]`; it does not consume anything unless
// the whole range is well formed, so `error in (a b)` stays a search for
// the words.
func (p *parser) tryRange(kt token) (Node, bool) {
	open, lo, hi, cl := p.peekAt(1), p.peekAt(2), p.peekAt(3), p.peekAt(4)
	bound := func(t token) (string, bool) {
		if t.kind != tWord {
			return "", false
		}
		if t.text == "*" && len(t.wild) == 1 {
			return "", true
		}
		return t.text, len(t.wild) == 0 && isNumber(t.text)
	}
	l, ok1 := bound(lo)
	h, ok2 := bound(hi)
	if !ok1 || !ok2 || (cl.kind != tRBrack && cl.kind != tRParen) || kt.kind == tWord && len(kt.wild) > 0 || kt.text == "" {
		return nil, false
	}
	p.i += 5
	return &Range{Key: kt.text, Lo: l, Hi: h, LoIncl: open.kind == tLBrack, HiIncl: cl.kind == tRBrack, Pos: kt.pos}, true
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return false
	}
	// Reject inf/nan spellings and hex floats: not numbers a user means.
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return false
		}
	}
	_ = f
	return true
}

// Is makes errors.Is(err, store.ErrInvalidQuery) true for query errors,
// and errors.Is(err, store.ErrQueryLimit) for those over a limit.
func (e *Error) Is(target error) bool {
	return target == store.ErrInvalidQuery || target == store.ErrQueryLimit && e.Limit != ""
}

// Terms returns the positive terms of a search in order (not those under
// a not), for GetLogs meta.terms and highlighting.
func Terms(n Node) []*Term {
	var out []*Term
	var walk func(Node)
	walk = func(n Node) {
		switch n := n.(type) {
		case *Term:
			out = append(out, n)
		case *And:
			for _, x := range n.Items {
				walk(x)
			}
		case *Or:
			for _, x := range n.Items {
				walk(x)
			}
		}
	}
	walk(n)
	return out
}
