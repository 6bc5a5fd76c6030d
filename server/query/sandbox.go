package query

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

func invalidUTF8At(s string) int {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(s)
}

// SandboxOptions says how to bind a query's SQL part to the logstore.
type SandboxOptions struct {
	// Logstore is the logstore's name; FROM may name it instead of "log".
	Logstore string
	// Relation is the identifier every logstore reference becomes
	// (default "log"); FROM-less SELECTs read it.
	Relation string
	// Source, if set, defines Relation: the result starts with
	// WITH "<Relation>" AS (<Source>) — e.g. the store's
	// SELECT ... FROM its table WHERE <time range> AND <search>.
	Source Expr
	// Prefixed means the caller prepends "WITH <Relation> AS (...) " to
	// the result itself (instead of passing Source): a user WITH list is
	// then emitted as its continuation (", name AS (...) SELECT ...").
	Prefixed bool
	// DefaultLimit is appended as LIMIT when the outermost query has none
	// (SLS returns 100 rows unless the SQL says LIMIT); 0 = no limit.
	DefaultLimit int
	// Limits caps CTEs, subqueries, joins and nesting (zero fields:
	// DefaultLimits). MaxBytes is the caller's to check on the whole
	// query (Limits.CheckLength).
	Limits Limits
}

// SandboxSQL checks that sql (the part after '|') is one read-only SELECT
// over the logstore and rewrites it to run on DuckDB:
//
//   - the statement starts with SELECT, WITH, FROM (DuckDB's FROM-first)
//     or VALUES; no ';' except one at the end; no parameters ($1, ?).
//   - every table reference (after FROM, JOIN, or ',' in a FROM clause)
//     is "log", the logstore's name, or a CTE of the query in scope and
//     defined before the reference; all logstore references become
//     Relation. String literals ('file.csv'), qualified names
//     (other.table) and table functions other than unnest,
//     generate_series and range are refused.
//   - every function is in the allowlist (AllowedFunction); SLS
//     names DuckDB lacks are renamed (SLSAlias), and date_format's
//     MySQL format literal is translated for strftime.
//   - statements and clauses that touch files, settings or other
//     databases are refused by keyword (COPY, ATTACH, PRAGMA, SET, ...),
//     even where DuckDB's grammar would reject them anyway.
//   - a top-level SELECT without FROM (also each part of a top-level
//     UNION) reads the logstore (SLS: "select status, count(*) group by
//     status"); subqueries and CTE bodies say FROM log themselves, so
//     "select unnest([1, 2])" inside them keeps its meaning. MySQL-style "LIMIT off, n" becomes
//     "LIMIT n OFFSET off".
//
// The output is re-assembled from the checked tokens — comments are
// dropped, strings and quoted identifiers re-quoted — so DuckDB parses
// exactly what was checked. The store must still run it on a connection
// with enable_external_access=false (defense in depth), not relying on it.
// Error positions are byte offsets in sql.
func SandboxSQL(sql string, opt SandboxOptions) (Expr, error) {
	if opt.Relation == "" {
		opt.Relation = "log"
	}
	toks, err := lexSQL(sql)
	if err != nil {
		return Expr{}, err
	}
	// One trailing ';' is tolerated.
	if n := len(toks); n > 0 && toks[n-1].kind == sPunct && toks[n-1].text == ";" {
		toks = toks[:n-1]
	}
	if len(toks) == 0 {
		return Expr{}, errAt(0, "empty SQL: write a statement such as `select count(*) as c`")
	}
	for _, t := range toks {
		if t.kind == sPunct && t.text == ";" {
			return Expr{}, errAt(t.pos, "only one SQL statement is allowed: remove the ';'")
		}
	}
	opt.Limits = opt.Limits.WithDefaults()
	if err := checkDepth(toks, opt.Limits.MaxDepth); err != nil {
		return Expr{}, err
	}
	c := &sqlChecker{toks: toks, opt: opt, end: len(sql)}
	if err := c.check(); err != nil {
		return Expr{}, err
	}
	return c.emit(), nil
}

// SandboxSQL checks q.SQL (see the package function); error positions are
// offsets in q.Text.
func (q *Query) SandboxSQL(opt SandboxOptions) (Expr, error) {
	e, err := SandboxSQL(q.SQL, opt)
	if qe, ok := err.(*Error); ok {
		return Expr{}, &Error{Pos: qe.Pos + q.SQLOffset, Msg: qe.Msg, Limit: qe.Limit}
	}
	for i := range e.origin {
		e.origin[i].src += q.SQLOffset
	}
	return e, err
}

type sqlKind int

const (
	sNone   sqlKind = iota // no token (past the end)
	sIdent                 // unquoted identifier or keyword
	sQIdent                // "quoted identifier"
	sString                // 'string'
	sNumber
	sOp    // operator
	sPunct // ( ) [ ] { } , . ; :
)

type sqlTok struct {
	kind sqlKind
	pos  int
	end  int    // byte offset after the token as written
	text string // identifier (as written / unquoted), string value, operator
	low  string // lowercase text for identifiers
	// out replaces the token's rendering when set (rewrites).
	out string
	// before is emitted before the token (inserted FROM clauses).
	before string
	// drop leaves the token out (its before is still emitted).
	drop bool
}

func (t sqlTok) is(kw string) bool { return t.kind == sIdent && t.low == kw }
func (t sqlTok) punct(p string) bool {
	return t.kind == sPunct && t.text == p
}

func isOpChar(c byte) bool {
	return strings.IndexByte("+-*/<>=~!@#%^&|", c) >= 0
}

var allowedOps = map[string]bool{
	"+": true, "-": true, "*": true, "/": true, "%": true, "//": true, "**": true, "^": true,
	"=": true, "==": true, "<>": true, "!=": true, "<": true, ">": true, "<=": true, ">=": true,
	"||": true, "->": true, "->>": true, "~~": true, "!~~": true, "~~*": true, "!~~*": true,
	"~": true, "!~": true, "~*": true, "!~*": true, "^@": true, "&": true, "|": true, "#": true,
	"<<": true, ">>": true, "@>": true, "<@": true, "&&": true, "@": true, "!": true,
}

func lexSQL(s string) ([]sqlTok, error) {
	if !utf8.ValidString(s) {
		return nil, errAt(invalidUTF8At(s), "invalid UTF-8 in SQL")
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		// DuckDB takes C strings: a NUL would cut the statement short.
		return nil, errAt(i, "NUL character in SQL")
	}
	var out []sqlTok
	i := 0
	for i < len(s) {
		c := s[i]
		n := len(out)
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			// DuckDB nests block comments.
			start, depth := i, 0
			for {
				if i+1 >= len(s) {
					return nil, errAt(start, "unterminated /* comment")
				}
				if s[i] == '/' && s[i+1] == '*' {
					depth++
					i += 2
				} else if s[i] == '*' && s[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		case c == '\'':
			start := i
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, errAt(start, "unterminated string literal: add a closing '")
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			if len(out) > 0 && out[len(out)-1].kind == sIdent && out[len(out)-1].pos+len(out[len(out)-1].text) == start {
				p := out[len(out)-1]
				return nil, errAt(p.pos, "prefixed string literals (%s'...') are not supported: write a plain '...' string", p.text)
			}
			out = append(out, sqlTok{kind: sString, pos: start, text: b.String()})
		case c == '"':
			start := i
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, errAt(start, "unterminated quoted identifier: add a closing \"")
				}
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			if b.Len() == 0 {
				return nil, errAt(start, "empty quoted identifier")
			}
			out = append(out, sqlTok{kind: sQIdent, pos: start, text: b.String(), low: strings.ToLower(b.String())})
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			start := i
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			if i < len(s) && s[i] == '.' && !(i+1 < len(s) && s[i+1] == '.') {
				i++
				for i < len(s) && s[i] >= '0' && s[i] <= '9' {
					i++
				}
			}
			if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
				j := i + 1
				if j < len(s) && (s[j] == '+' || s[j] == '-') {
					j++
				}
				if j < len(s) && s[j] >= '0' && s[j] <= '9' {
					i = j
					for i < len(s) && s[i] >= '0' && s[i] <= '9' {
						i++
					}
				}
			}
			out = append(out, sqlTok{kind: sNumber, pos: start, text: s[start:i]})
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			start := i
			for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
				i++
			}
			if i < len(s) && (s[i] >= 0x80 || s[i] == '$') {
				return nil, errAt(i, "unquoted identifiers must be ASCII letters, digits and '_': quote it with \"...\"")
			}
			w := s[start:i]
			out = append(out, sqlTok{kind: sIdent, pos: start, text: w, low: strings.ToLower(w)})
		case c == ':':
			if i+1 < len(s) && s[i+1] == ':' {
				out = append(out, sqlTok{kind: sOp, pos: i, text: "::"})
				i += 2
			} else if i+1 < len(s) && s[i+1] == '=' {
				return nil, errAt(i, `":=" is not supported`)
			} else {
				out = append(out, sqlTok{kind: sPunct, pos: i, text: ":"})
				i++
			}
		case strings.IndexByte("()[]{},.;", c) >= 0:
			out = append(out, sqlTok{kind: sPunct, pos: i, text: s[i : i+1]})
			i++
		case isOpChar(c):
			start := i
			for i < len(s) && isOpChar(s[i]) {
				if i > start && (s[i] == '-' && s[i-1] == '-' || s[i] == '*' && s[i-1] == '/') {
					i-- // a comment starts inside the run
					break
				}
				i++
			}
			op := s[start:i]
			// PostgreSQL rule: a multi-char operator ends in + or - only
			// if it contains one of ~!@#%^&|.
			// Trimming removes only + and -, so the test is made once: a
			// run of n pluses must not cost n² per token.
			if !strings.ContainsAny(op, "~!@#%^&|") {
				for len(op) > 1 && (op[len(op)-1] == '+' || op[len(op)-1] == '-') {
					op = op[:len(op)-1]
				}
			}
			i = start + len(op)
			if !allowedOps[op] {
				return nil, errAt(start, "operator %q is not supported", op)
			}
			out = append(out, sqlTok{kind: sOp, pos: start, text: op})
		case c == '?' || c == '$':
			return nil, errAt(i, "parameters and $-quoting are not allowed in queries")
		default:
			return nil, errAt(i, "unexpected character %q", rune(c))
		}
		if len(out) > n {
			out[n].end = i
		}
	}
	return out, nil
}

// forbiddenKeywords may not appear unquoted anywhere: statements and
// clauses that write, touch files, settings, extensions or other
// databases. (DuckDB would already refuse most inside a SELECT; this is
// defense in depth. A key with such a name can be written "quoted".)
var forbiddenKeywords = map[string]bool{
	"insert": true, "update": true, "delete": true, "create": true, "drop": true, "alter": true,
	"copy": true, "attach": true, "detach": true, "install": true, "load": true, "pragma": true,
	"set": true, "reset": true, "call": true, "export": true, "import": true, "table": true,
	"describe": true, "summarize": true, "show": true, "checkpoint": true, "vacuum": true,
	"explain": true, "prepare": true, "execute": true, "deallocate": true, "truncate": true,
	"pivot": true, "unpivot": true, "pivot_wider": true, "pivot_longer": true, "into": true,
	"use": true, "begin": true, "commit": true, "rollback": true, "abort": true, "grant": true,
	"revoke": true, "merge": true, "returning": true,
}

// parenKeywords are keywords that can precede '(' without being a
// function call.
var parenKeywords = map[string]bool{
	"in": true, "as": true, "over": true, "filter": true, "values": true, "exists": true,
	"cast": true, "try_cast": true, "extract": true, "any": true, "all": true, "some": true,
	"on": true, "using": true, "not": true, "and": true, "or": true, "select": true, "from": true,
	"join": true, "where": true, "when": true, "then": true, "else": true, "case": true, "by": true,
	"having": true, "lateral": true, "union": true, "intersect": true, "except": true,
	"distinct": true, "rollup": true, "cube": true, "sets": true, "group": true, "within": true,
	"array": true, "row": true, "is": true, "like": true, "ilike": true, "between": true,
	"interval": true, "struct": true, "map": true, "columns": true, "exclude": true,
	"replace": true, "rename": true, "materialized": true, "qualify": true, "window": true,
	"partition": true, "order": true, "limit": true, "offset": true, "decimal": true,
	"numeric": true, "varchar": true, "char": true, "for": true, "overlay": true,
	"position": true, "substring": true, "trim": true, "grouping": true, "escape": true,
	"with": true, "recursive": true, "sample": true, "tablesample": true, "union_by_name": true,
	"similar": true, "to": true, "nulls": true, "asc": true, "desc": true,
}

// fromSyntaxCalls use FROM inside their parentheses as syntax, not as a
// table clause: extract(year FROM t), substring(s FROM 1), trim(x FROM s).
var fromSyntaxCalls = map[string]bool{"extract": true, "substring": true, "trim": true, "overlay": true}

// clauseEnd keywords end a FROM clause (and bound a SELECT list).
var clauseEnd = map[string]bool{
	"where": true, "group": true, "having": true, "window": true, "qualify": true, "order": true,
	"limit": true, "offset": true, "union": true, "intersect": true, "except": true, "select": true,
}

type level struct {
	id         int
	kind       string // "top", "group", "call", "cte"
	fn         string // function name for "call"
	inFrom     bool   // inside a FROM clause
	expectRel  bool   // the next token is a table reference
	afterRel   int    // tokens since a table reference (alias handling)
	fromFirst  bool   // a FROM clause came before SELECT in this block
	cteState   int    // 0 none, 1 expect name, 2 after name, 3 after AS, 4 after body
	cteName    string
	cteRecurse bool
	relGroup   bool // a parenthesised table reference: FROM (...)
	relStart   bool // at the first token of a relGroup
}

type cteDef struct {
	name  string
	scope int // id of the level it was defined in
	from  int // first token index where it may be referenced
}

type sqlChecker struct {
	toks   []sqlTok
	end    int // len of the SQL text, for errors at the end
	opt    SandboxOptions
	stack  []*level
	nextID int
	ctes   []cteDef
	// userWith: the outermost statement starts with WITH [RECURSIVE].
	userWith, userRecursive bool
	// Counts for Limits.
	nCTEs, nSubqueries, nJoins int
}

// checkDepth refuses brackets nested deeper than max: DuckDB's parser and
// binder recurse on them.
func checkDepth(toks []sqlTok, max int) error {
	depth := 0
	for _, t := range toks {
		switch {
		case t.punct("(") || t.punct("[") || t.punct("{"):
			depth++
			if depth > max {
				return limitAt(t.pos, "max-depth", "brackets are nested more than %d deep", max)
			}
		case t.punct(")") || t.punct("]") || t.punct("}"):
			depth--
		}
	}
	return nil
}

// startsQuery reports whether toks[i] begins a query block.
func (c *sqlChecker) startsQuery(i int) bool {
	if i >= len(c.toks) {
		return false
	}
	t := c.toks[i]
	return t.is("select") || t.is("with") || t.is("from") || t.is("values")
}

// countSubquery counts one more query block at toks[i] (the '(' of a
// subquery or a set operation's keyword).
func (c *sqlChecker) countSubquery(i int) error {
	c.nSubqueries++
	if c.nSubqueries > c.opt.Limits.MaxSubqueries {
		return limitAt(c.toks[i].pos, "max-subqueries", "the SQL has more than %d subqueries (nested SELECTs and UNION/INTERSECT/EXCEPT branches)", c.opt.Limits.MaxSubqueries)
	}
	return nil
}

func (c *sqlChecker) countJoin(i int) error {
	c.nJoins++
	if c.nJoins > c.opt.Limits.MaxJoins {
		return limitAt(c.toks[i].pos, "max-joins", "the SQL joins more than %d times (JOINs and comma-separated FROM items)", c.opt.Limits.MaxJoins)
	}
	return nil
}

func (c *sqlChecker) top() *level { return c.stack[len(c.stack)-1] }

func (c *sqlChecker) push(kind, fn string) *level {
	c.nextID++
	l := &level{id: c.nextID, kind: kind, fn: fn}
	c.stack = append(c.stack, l)
	return l
}

func (c *sqlChecker) inScope(scope int) bool {
	for _, l := range c.stack {
		if l.id == scope {
			return true
		}
	}
	return false
}

func (c *sqlChecker) check() error {
	toks := c.toks
	first := toks[0]
	switch {
	case first.is("select"), first.is("from"), first.is("values"), first.punct("("):
	case first.is("with"):
		c.userWith = true
		c.userRecursive = len(toks) > 1 && toks[1].is("recursive")
		if c.userRecursive && c.opt.Prefixed && c.opt.Source.SQL == "" {
			return errAt(toks[1].pos, "WITH RECURSIVE is not supported here")
		}
	default:
		return errAt(first.pos, "only SELECT queries are allowed, found %q: write e.g. `select count(*) as c`", first.text)
	}
	c.push("top", "")
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		l := c.top()
		var next sqlTok
		if i+1 < len(toks) {
			next = toks[i+1]
		}
		if t.kind == sIdent && forbiddenKeywords[t.low] {
			return errAt(t.pos, "%q is not allowed: queries may only SELECT from the logstore", strings.ToUpper(t.text))
		}
		// CTE definitions: WITH [RECURSIVE] name [(cols)] AS [NOT] [MATERIALIZED] (body) [, ...]
		switch l.cteState {
		case 1:
			if t.is("recursive") {
				l.cteRecurse = true
				continue
			}
			if t.kind != sIdent && t.kind != sQIdent {
				return errAt(t.pos, "expected a CTE name after WITH")
			}
			l.cteName = t.low
			l.cteState = 2
			continue
		case 2:
			if t.punct("(") { // column list
				c.push("group", "")
				continue
			}
			if t.is("as") {
				l.cteState = 3
				continue
			}
			return errAt(t.pos, "expected AS after CTE name")
		case 3:
			if t.is("not") || t.is("materialized") {
				continue
			}
			if !t.punct("(") {
				return errAt(t.pos, "expected ( after AS in WITH")
			}
			if l.cteRecurse {
				c.ctes = append(c.ctes, cteDef{name: l.cteName, scope: l.id, from: i})
			}
			c.nCTEs++
			if c.nCTEs > c.opt.Limits.MaxCTEs {
				return errLimitCTEs(t.pos, c.opt.Limits.MaxCTEs)
			}
			l.cteState = 4
			c.push("cte", l.cteName)
			continue
		case 4:
			l.cteState = 0
			if t.punct(",") {
				l.cteState = 1
				continue
			}
		}
		if l.relStart {
			// FROM (a JOIN b ...) is a parenthesised join: its first
			// token is a table reference unless a query starts there.
			l.relStart = false
			if !(t.is("select") || t.is("with") || t.is("from") || t.is("values") || t.punct("(")) {
				l.expectRel, l.inFrom = true, true
			} else if t.punct("(") {
				if c.startsQuery(i + 1) {
					if err := c.countSubquery(i); err != nil {
						return err
					}
				}
				c.push("group", "").relGroup = true
				c.top().relStart = true
				continue
			}
		}
		if l.expectRel {
			if err := c.relation(i); err != nil {
				return err
			}
			if t.is("lateral") {
				continue
			}
			l.expectRel = false
			if t.punct("(") {
				if c.startsQuery(i + 1) {
					if err := c.countSubquery(i); err != nil {
						return err
					}
				}
				g := c.push("group", "")
				g.relGroup, g.relStart = true, true
				continue
			}
			if next.punct("(") { // table function
				if sizedFunctions[t.low] {
					if err := c.checkSizedCall(i, t.low, true); err != nil {
						return err
					}
				}
				c.push("call", t.low)
				i++
				continue
			}
			l.afterRel = 1
			continue
		}
		if l.afterRel > 0 {
			// [AS] alias [(col, ...)]: a column list is not a call.
			switch {
			case t.is("as"):
				l.afterRel = 2
				continue
			case (t.kind == sIdent && !parenKeywords[t.low] && !clauseEnd[t.low] && !isJoinWord(t.low)) || t.kind == sQIdent:
				l.afterRel = 0
				if next.punct("(") {
					// Column aliases: identifiers and commas only.
					j := i + 2
					for ; j < len(toks) && !toks[j].punct(")"); j++ {
						if tk := toks[j]; !(tk.kind == sQIdent || tk.kind == sIdent && !forbiddenKeywords[tk.low] || tk.punct(",")) {
							return errAt(tk.pos, "expected a column alias")
						}
					}
					if j == len(toks) {
						return errAt(c.end, `missing ")"`)
					}
					i = j
				}
				continue
			}
			l.afterRel = 0
		}
		switch t.kind {
		case sPunct:
			switch t.text {
			case "(":
				if c.startsQuery(i + 1) {
					if err := c.countSubquery(i); err != nil {
						return err
					}
				}
				c.push("group", "")
			case ")":
				if len(c.stack) == 1 {
					return errAt(t.pos, `unexpected ")"`)
				}
				closed := c.top()
				c.stack = c.stack[:len(c.stack)-1]
				if closed.kind == "cte" {
					outer := c.top()
					c.ctes = append(c.ctes, cteDef{name: closed.fn, scope: outer.id, from: i})
				}
				if closed.relGroup || (closed.kind == "call" && tableFunctions[closed.fn]) {
					c.top().afterRel = 1 // an alias may follow
				}
			case ",":
				if l.inFrom {
					l.expectRel = true
					if err := c.countJoin(i); err != nil {
						return err
					}
				}
			}
			continue
		case sIdent, sQIdent:
		default:
			continue
		}
		// Function call? replace( is one unless it follows * or
		// EXCLUDE (...): then it is the star modifier * REPLACE (...).
		isCall := next.punct("(") && !(t.kind == sIdent && parenKeywords[t.low])
		if t.is("replace") && next.punct("(") && i > 0 && !c.toks[i-1].punct("*") && !c.toks[i-1].punct(")") {
			isCall = true
		}
		if isCall {
			name := t.low
			if alias, ok := slsAliases[name]; ok {
				c.toks[i].out = alias
				name = alias
			} else if !allowedFunctions[name] {
				return errAt(t.pos, "function %q is not allowed in queries (see the allowlist in the server/query package documentation)", t.text)
			}
			if sizedFunctions[name] {
				if err := c.checkSizedCall(i, name, false); err != nil {
					return err
				}
			}
			if t.low == "date_format" {
				c.translateDateFormat(i + 1)
			}
			// SLS takes unix seconds where DuckDB wants a timestamp:
			// date_trunc('minute', __time__), date_format(__time__, ...).
			switch t.low {
			case "date_trunc":
				c.wrapTimeArg(i+1, 1)
			case "date_format":
				c.wrapTimeArg(i+1, 0)
			}
			c.push("call", name)
			i++
			continue
		}
		if t.kind == sQIdent {
			continue
		}
		switch t.low {
		case "with":
			l.cteState = 1
		case "from":
			if l.kind == "call" && fromSyntaxCalls[l.fn] {
				continue
			}
			if c.isDistinctFrom(i) {
				continue
			}
			l.inFrom = true
			l.expectRel = true
			if !c.selectSeen(i) {
				l.fromFirst = true
			}
		case "join":
			l.expectRel = true
			l.inFrom = true
			if err := c.countJoin(i); err != nil {
				return err
			}
		case "union", "intersect", "except":
			if err := c.countSubquery(i); err != nil {
				return err
			}
			if clauseEnd[t.low] {
				l.inFrom = false
			}
		case "cast", "try_cast", "extract", "substring", "trim", "overlay", "position":
			if next.punct("(") {
				c.push("call", t.low)
				i++
			}
		default:
			if clauseEnd[t.low] {
				l.inFrom = false
			}
		}
		if t.is("select") {
			if !l.fromFirst && l.kind == "top" {
				c.insertFrom(i)
			}
			l.fromFirst = false
		}
	}
	if len(c.stack) != 1 {
		return errAt(c.end, `missing ")"`)
	}
	if c.top().expectRel {
		return errAt(c.end, "expected a table after FROM/JOIN: write log")
	}
	if c.top().cteState != 0 {
		return errAt(c.end, "incomplete WITH clause")
	}
	c.fixLimit()
	return nil
}

// isDistinctFrom reports whether the FROM at toks[i] is part of
// "IS [NOT] DISTINCT FROM".
func (c *sqlChecker) isDistinctFrom(i int) bool {
	if i < 2 || !c.toks[i-1].is("distinct") {
		return false
	}
	return c.toks[i-2].is("is") || i >= 3 && c.toks[i-2].is("not") && c.toks[i-3].is("is")
}

func isJoinWord(w string) bool {
	switch w {
	case "join", "inner", "left", "right", "full", "outer", "cross", "natural", "semi", "anti",
		"asof", "positional", "on", "using", "lateral":
		return true
	}
	return false
}

// selectSeen reports whether a SELECT keyword precedes index i in the
// same block (same paren level, since the last set operation).
func (c *sqlChecker) selectSeen(i int) bool {
	depth := 0
	for j := i - 1; j >= 0; j-- {
		t := c.toks[j]
		switch {
		case t.punct(")"):
			depth++
		case t.punct("("):
			if depth == 0 {
				return false
			}
			depth--
		case depth == 0 && (t.is("union") || t.is("intersect") || t.is("except")):
			return false
		case depth == 0 && t.is("select"):
			return true
		}
	}
	return false
}

// relation checks the table reference at toks[i].
func (c *sqlChecker) relation(i int) error {
	t := c.toks[i]
	var next sqlTok
	if i+1 < len(c.toks) {
		next = c.toks[i+1]
	}
	switch t.kind {
	case sString:
		return errAt(t.pos, "reading files is not allowed: FROM takes the logstore (log), not a string")
	case sPunct:
		if t.text == "(" {
			return nil
		}
	case sIdent, sQIdent:
		if t.kind == sIdent && t.is("lateral") {
			return nil
		}
		if next.punct("(") {
			if !tableFunctions[t.low] {
				return errAt(t.pos, "table function %q is not allowed: queries read only the logstore (log)", t.text)
			}
			return nil
		}
		if next.punct(".") {
			return errAt(t.pos, "qualified table names are not allowed: queries read only the logstore (log)")
		}
		if t.low == "log" || (c.opt.Logstore != "" && t.low == strings.ToLower(c.opt.Logstore)) {
			c.toks[i].out = QuoteIdent(c.opt.Relation)
			aliased := next.is("as") || next.kind == sQIdent ||
				next.kind == sIdent && !parenKeywords[next.low] && !clauseEnd[next.low] && !isJoinWord(next.low)
			if !aliased && !strings.EqualFold(t.text, c.opt.Relation) {
				// keep log.status working
				c.toks[i].out += " AS " + QuoteIdent(t.text)
			}
			return nil
		}
		for _, d := range c.ctes {
			if d.name == t.low && d.from <= i && c.inScope(d.scope) {
				return nil
			}
		}
		return errAt(t.pos, "table %q is not allowed: queries read only the logstore (write FROM log or leave FROM out)", t.text)
	}
	return errAt(t.pos, "expected a table after FROM/JOIN: write log")
}

// insertFrom adds "FROM <relation>" to the SELECT at toks[i] if its block
// has no FROM clause.
func (c *sqlChecker) insertFrom(i int) {
	at := func(j int) {
		// After "IS [NOT] DISTINCT" an inserted FROM would read as an
		// operator; the statement is malformed anyway, let DuckDB say so.
		if j > 0 && c.toks[j-1].is("distinct") {
			return
		}
		if j == len(c.toks) {
			c.toks = append(c.toks, sqlTok{kind: sPunct, pos: -1, before: " FROM " + QuoteIdent(c.opt.Relation)})
			return
		}
		c.toks[j].before += " FROM " + QuoteIdent(c.opt.Relation)
	}
	depth := 0
	for j := i + 1; j < len(c.toks); j++ {
		t := c.toks[j]
		switch {
		case t.punct("("):
			depth++
		case t.punct(")"):
			if depth == 0 {
				at(j)
				return
			}
			depth--
		case depth == 0 && t.is("from") && !c.isDistinctFrom(j):
			return
		case depth == 0 && t.kind == sIdent && clauseEnd[t.low] && !t.is("select"):
			at(j)
			return
		}
	}
	at(len(c.toks))
}

// fixLimit rewrites a top-level "LIMIT a, b" to "LIMIT b OFFSET a" and adds
// the default limit.
func (c *sqlChecker) fixLimit() {
	depth := 0
	found := false
	for j := 0; j < len(c.toks); j++ {
		t := c.toks[j]
		switch {
		case t.punct("("):
			depth++
		case t.punct(")"):
			depth--
		case depth == 0 && t.is("limit"):
			found = true
			if j+3 < len(c.toks) && c.toks[j+1].kind == sNumber && c.toks[j+2].punct(",") && c.toks[j+3].kind == sNumber {
				off, n := c.toks[j+1].text, c.toks[j+3].text
				c.toks[j+1].out = n
				c.toks[j+2].out = "OFFSET"
				c.toks[j+3].out = off
			}
		}
	}
	if !found && c.opt.DefaultLimit > 0 {
		c.toks = append(c.toks, sqlTok{kind: sPunct, pos: -1, before: " LIMIT " + strconv.Itoa(c.opt.DefaultLimit)})
	}
}

// translateDateFormat rewrites the MySQL format literal of
// date_format(x, '<fmt>') (toks[open] is the '(') into strftime's.
func (c *sqlChecker) translateDateFormat(open int) {
	depth := 0
	for j := open + 1; j < len(c.toks); j++ {
		t := c.toks[j]
		switch {
		case t.punct("(") || t.punct("["):
			depth++
		case t.punct(")") || t.punct("]"):
			if depth == 0 {
				return
			}
			depth--
		case depth == 0 && t.punct(","):
			if j+2 < len(c.toks) && c.toks[j+1].kind == sString && c.toks[j+2].punct(")") {
				c.toks[j+1].text = mysqlToStrftime(c.toks[j+1].text)
			}
			return
		}
	}
}

// wrapTimeArg rewrites argument n of the call whose '(' is toks[open]
// into to_timestamp(__time__) when it is exactly __time__.
func (c *sqlChecker) wrapTimeArg(open, n int) {
	depth, arg, start := 0, 0, open+1
	for j := open + 1; j < len(c.toks); j++ {
		t := c.toks[j]
		end := false
		switch {
		case t.punct("(") || t.punct("[") || t.punct("{"):
			depth++
		case (t.punct(")") || t.punct("]") || t.punct("}")) && depth > 0:
			depth--
		case t.punct(")"):
			end = true
		case depth == 0 && t.punct(","):
			end = true
		}
		if !end {
			continue
		}
		if arg == n {
			if j == start+1 && c.toks[start].kind == sIdent && c.toks[start].low == ColTime {
				c.toks[start].out = "to_timestamp ( " + c.toks[start].text + " )"
			}
			return
		}
		if t.punct(")") {
			return
		}
		arg++
		start = j + 1
	}
}

var mysqlFormat = map[byte]string{
	'i': "%M", 's': "%S", 'M': "%B", 'W': "%A", 'c': "%-m", 'e': "%-d", 'h': "%I",
	'k': "%-H", 'l': "%-I", 'T': "%H:%M:%S", 'r': "%I:%M:%S %p", 'v': "%V", 'x': "%G",
	'f': "%f", 'u': "%W", 'D': "%-d",
}

func mysqlToStrftime(f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] == '%' && i+1 < len(f) {
			if r, ok := mysqlFormat[f[i+1]]; ok {
				b.WriteString(r)
			} else {
				b.WriteByte('%')
				b.WriteByte(f[i+1])
			}
			i++
			continue
		}
		b.WriteByte(f[i])
	}
	return b.String()
}

func (c *sqlChecker) emit() Expr {
	var b strings.Builder
	var args []any
	if c.opt.Source.SQL != "" {
		b.WriteString("WITH ")
		if c.userRecursive {
			b.WriteString("RECURSIVE ")
		}
		b.WriteString(QuoteIdent(c.opt.Relation))
		b.WriteString(" AS (")
		b.WriteString(c.opt.Source.SQL)
		b.WriteString(")")
		args = c.opt.Source.Args
	}
	toks := c.toks
	if c.opt.Source.SQL == "" && c.opt.Prefixed && c.userWith {
		b.WriteString(",")
		toks = toks[1:]
	}
	if c.opt.Source.SQL != "" && c.userWith {
		// Merge the user's WITH list into ours.
		toks = toks[1:]
		if len(toks) > 0 && toks[0].is("recursive") {
			toks = toks[1:]
		}
		b.WriteString(",")
	}
	var origin []span
	for _, t := range toks {
		b.WriteString(t.before)
		if t.pos < 0 || t.drop {
			continue
		}
		b.WriteByte(' ')
		start := b.Len()
		switch {
		case t.out != "":
			b.WriteString(t.out)
		case t.kind == sString:
			b.WriteString("'" + strings.ReplaceAll(t.text, "'", "''") + "'")
		case t.kind == sQIdent:
			b.WriteString(QuoteIdent(t.text))
		default:
			b.WriteString(t.text)
		}
		origin = append(origin, span{out: start, outN: b.Len() - start, src: t.pos, n: t.end - t.pos})
	}
	out := b.String()
	trimmed := strings.TrimLeft(out, " ")
	for i := range origin {
		origin[i].out -= len(out) - len(trimmed)
	}
	return Expr{SQL: strings.TrimRight(trimmed, " "), Args: args, origin: origin}
}
