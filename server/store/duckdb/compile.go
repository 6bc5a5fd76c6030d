package duckdb

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
)

// Compiler compiles the "search | sql" language (sls-api.md §5) against a
// logstore of this store. server/query provides the full implementation;
// the store falls back to a built-in minimal one (basicCompiler).
//
// The compiled SQL runs in DuckDB over the relation "logs" whose columns
// are the fixed columns (ColTime, ColTopic, ...) plus one typed column per
// field-indexed key, named after the key: VARCHAR for text and json,
// BIGINT for long, DOUBLE for double; NULL when a log lacks the key or its
// value does not parse. Full-text: ColLine holds the log's tokens (values of
// the keys the line index covers, tokenised with Target.LineTokens, lower
// case unless case-sensitive) joined by single spaces with a space at
// each end, so term t matches with contains(__line__, ' t ') and a prefix
// t* with contains(__line__, ' t'). Group tags are a JSON object in
// ColTags: json_extract_string(__tags__, '$."__path__"').
type Compiler interface {
	Compile(query string, t Target) (Compiled, error)
}

// Target describes the logstore a query is compiled for.
type Target struct {
	// Index is the logstore's index config; nil when it has none.
	Index *index.Config
	// Columns maps each field-indexed key to its column's SQL type.
	Columns map[string]string
	// LineTokens tokenises a term for the full-text column; nil when the
	// logstore has no full-text index.
	LineTokens func(term string) []string
	// KeyTokens tokenises a term for a text key's field index.
	KeyTokens func(key, term string) []string
}

// Compiled is a compiled query. Where filters logs (the store adds the
// time range and topic); SQL, when set, is a complete SELECT statement
// reading from "logs". Args bind the '?' placeholders of Where, then SQL.
type Compiled struct {
	Where      string
	WhereArgs  []any
	SQL        string
	SQLArgs    []any
	WhereQuery string // the search part as written
	AggQuery   string // the SQL part as written
}

func (s *schema) target() Target {
	t := Target{Index: s.idx, Columns: map[string]string{}}
	for _, f := range s.fields {
		t.Columns[f.Key] = f.sqlType()
	}
	if s.line != nil {
		t.LineTokens = s.line.tokens
	}
	t.KeyTokens = func(key, term string) []string {
		if tk := s.keyToken[key]; tk != nil {
			return tk.tokens(term)
		}
		return []string{term}
	}
	return t
}

// basicCompiler is the store's own minimal compiler, used until
// server/query is wired in: full-text terms and "phrases", t* prefixes,
// key:value on indexed keys, __topic__/__source__/__tag__:k:v, and/or/not
// and parentheses; the SQL part is passed through with "FROM logs"
// inserted, and may not name tables (no FROM/JOIN) or hold several
// statements. It is not the SQL sandbox.
type basicCompiler struct{}

func (basicCompiler) Compile(q string, t Target) (Compiled, error) {
	search, sqlPart := splitPipe(q)
	c := Compiled{WhereQuery: strings.TrimSpace(search), AggQuery: strings.TrimSpace(sqlPart)}
	p := &searchParser{toks: lexSearch(search), t: t}
	if len(p.toks) > 0 {
		where, err := p.or()
		if err != nil {
			return c, err
		}
		if p.i < len(p.toks) {
			return c, invalidf("unexpected %q in search", p.toks[p.i].s)
		}
		c.Where, c.WhereArgs = where, p.args
	}
	if c.AggQuery != "" {
		sql, err := injectFrom(c.AggQuery)
		if err != nil {
			return c, err
		}
		c.SQL = sql
	}
	return c, nil
}

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{store.ErrInvalidQuery}, a...)...)
}

// splitPipe splits at the first '|' outside double quotes.
func splitPipe(q string) (string, string) {
	inQ := false
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case '\\':
			i++
		case '"':
			inQ = !inQ
		case '|':
			if !inQ {
				return q[:i], q[i+1:]
			}
		}
	}
	return q, ""
}

type stok struct {
	s      string
	quoted bool
}

func lexSearch(s string) []stok {
	var out []stok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			out = append(out, stok{s: string(c)})
			i++
		default:
			var b strings.Builder
			quoted := false
			for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' && s[i] != '(' && s[i] != ')' {
				if s[i] == '"' {
					quoted = true
					i++
					for i < len(s) && s[i] != '"' {
						if s[i] == '\\' && i+1 < len(s) {
							i++
						}
						b.WriteByte(s[i])
						i++
					}
					i++
					continue
				}
				b.WriteByte(s[i])
				i++
			}
			out = append(out, stok{s: b.String(), quoted: quoted})
		}
	}
	return out
}

type searchParser struct {
	toks []stok
	i    int
	t    Target
	args []any
}

func (p *searchParser) peekWord(w string) bool {
	return p.i < len(p.toks) && !p.toks[p.i].quoted && strings.EqualFold(p.toks[p.i].s, w)
}

func (p *searchParser) or() (string, error) {
	l, err := p.and()
	if err != nil {
		return "", err
	}
	for p.peekWord("or") {
		p.i++
		r, err := p.and()
		if err != nil {
			return "", err
		}
		l = "(" + l + " OR " + r + ")"
	}
	return l, nil
}

func (p *searchParser) and() (string, error) {
	l, err := p.unary()
	if err != nil {
		return "", err
	}
	for p.i < len(p.toks) && !p.peekWord("or") && p.toks[p.i].s != ")" {
		if p.peekWord("and") {
			p.i++
		}
		r, err := p.unary()
		if err != nil {
			return "", err
		}
		l = "(" + l + " AND " + r + ")"
	}
	return l, nil
}

func (p *searchParser) unary() (string, error) {
	if p.i >= len(p.toks) {
		return "", invalidf("search ends early")
	}
	if p.peekWord("not") {
		p.i++
		e, err := p.unary()
		if err != nil {
			return "", err
		}
		return "(NOT coalesce(" + e + ", false))", nil
	}
	tk := p.toks[p.i]
	p.i++
	if tk.s == "(" && !tk.quoted {
		e, err := p.or()
		if err != nil {
			return "", err
		}
		if p.i >= len(p.toks) || p.toks[p.i].s != ")" {
			return "", invalidf("missing ')'")
		}
		p.i++
		return e, nil
	}
	if tk.s == ")" && !tk.quoted {
		return "", invalidf("unexpected ')'")
	}
	return p.atom(tk)
}

func (p *searchParser) atom(tk stok) (string, error) {
	if !tk.quoted && tk.s == "*" {
		return "true", nil
	}
	if !tk.quoted {
		if k, v, ok := strings.Cut(tk.s, ":"); ok && k != "" {
			return p.keyValue(k, v)
		}
	}
	if p.t.LineTokens == nil {
		return "", invalidf("full-text search for %q needs a full-text (line) index on the logstore", tk.s)
	}
	term, prefix := tk.s, false
	if !tk.quoted && strings.HasSuffix(term, "*") {
		term, prefix = strings.TrimSuffix(term, "*"), true
	}
	toks := p.t.LineTokens(term)
	if len(toks) == 0 {
		return "true", nil
	}
	pat := " " + strings.Join(toks, " ")
	if !prefix {
		pat += " "
	}
	p.args = append(p.args, pat)
	return "contains(" + ColLine + ", ?)", nil
}

func (p *searchParser) keyValue(k, v string) (string, error) {
	switch {
	case k == "__topic__" || k == "__source__":
		p.args = append(p.args, v)
		return k + " = ?", nil
	case k == "__tag__":
		tk, tv, _ := strings.Cut(v, ":")
		p.args = append(p.args, `$."`+strings.ReplaceAll(tk, `"`, `\"`)+`"`, tv)
		return "json_extract_string(" + ColTags + ", ?) = ?", nil
	}
	typ, ok := p.t.Columns[k]
	if !ok {
		return "", invalidf("key %q has no field index; add it to the logstore's index to search it", k)
	}
	col := quoteIdent(k)
	if v == "*" {
		return col + " IS NOT NULL", nil
	}
	switch typ {
	case "BIGINT", "DOUBLE":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return "", invalidf("key %q is numeric; %q is not a number", k, v)
		}
		p.args = append(p.args, f)
		return col + " = ?", nil
	}
	toks := p.t.KeyTokens(k, v)
	if len(toks) == 0 {
		p.args = append(p.args, v)
		return col + " = ?", nil
	}
	cs := p.t.Index != nil && p.t.Index.Keys[k].CaseSensitive
	quoted := make([]string, len(toks))
	for i, t := range toks {
		quoted[i] = regexp.QuoteMeta(t)
	}
	// Token boundaries: start/end or any non-letter, non-digit character.
	re := `(^|[^\pL\pN_])` + strings.Join(quoted, `[^\pL\pN_]+`) + `($|[^\pL\pN_])`
	if !cs {
		re = "(?i)" + re
	}
	p.args = append(p.args, re)
	return "regexp_matches(" + col + ", ?)", nil
}

var sqlClause = regexp.MustCompile(`(?i)\b(where|group|having|order|limit|qualify|window|union|offset)\b`)
var sqlForbidden = regexp.MustCompile(`(?i)\b(from|join|attach|copy|pragma|install|load|set|create|drop|insert|update|delete|alter|call|export|import)\b|;`)

// injectFrom turns SLS's FROM-less SELECT into one reading "logs".
func injectFrom(sql string) (string, error) {
	masked := maskStrings(sql)
	if !strings.HasPrefix(strings.ToLower(strings.TrimLeftFunc(masked, unicode.IsSpace)), "select") {
		return "", invalidf("the analysis part must be a SELECT statement, got %q", sql)
	}
	if loc := sqlForbidden.FindStringIndex(masked); loc != nil {
		return "", invalidf("%q is not allowed in the analysis part", sql[loc[0]:loc[1]])
	}
	depth := 0
	for i := 0; i < len(masked); i++ {
		switch masked[i] {
		case '(':
			depth++
		case ')':
			depth--
		default:
			if depth == 0 {
				if loc := sqlClause.FindStringIndex(masked[i:]); loc != nil && loc[0] == 0 && (i == 0 || !isIdentByte(masked[i-1])) {
					return sql[:i] + " FROM logs " + sql[i:], nil
				}
			}
		}
	}
	return sql + " FROM logs", nil
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// maskStrings replaces the contents of quoted strings and identifiers
// with 'x' so keyword scans ignore them (same length as s).
func maskStrings(s string) string {
	b := []byte(s)
	var q byte
	for i := range b {
		switch {
		case q != 0 && b[i] == q:
			q = 0
		case q != 0:
			b[i] = 'x'
		case b[i] == '\'' || b[i] == '"':
			q = b[i]
		}
	}
	return string(b)
}
