package query

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits bound what one query may ask of the engine before it is
// planned. DuckDB's parser, binder and optimizer are neither interruptible
// nor governed by memory_limit, and some of their costs grow faster than
// the text: 1,500 chained CTEs took the binder past 4 GB (each scope
// copies the CTE map, so the cost grows with the square of the count). The
// counts are taken on the sandbox's tokens, before DuckDB sees the SQL. A
// zero field takes its default (DefaultLimits).
type Limits struct {
	// MaxBytes caps the whole query text, search and SQL (default 32 KiB).
	MaxBytes int
	// MaxCTEs caps the WITH entries (default 16).
	MaxCTEs int
	// MaxSubqueries caps the query blocks besides the outermost one:
	// parenthesised SELECTs (in FROM, IN, EXISTS or as a value) and the
	// extra branches of UNION/INTERSECT/EXCEPT (default 32).
	MaxSubqueries int
	// MaxJoins caps the JOINs and comma-separated FROM items (default 16).
	MaxJoins int
	// MaxDepth caps the nesting of parentheses and brackets (default 64).
	MaxDepth int
}

// DefaultLimits are the limits a zero Limits field takes.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 32 << 10, MaxCTEs: 16, MaxSubqueries: 32, MaxJoins: 16, MaxDepth: 64}
}

// WithDefaults returns l with its zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	for _, f := range []struct{ v, def *int }{
		{&l.MaxBytes, &d.MaxBytes}, {&l.MaxCTEs, &d.MaxCTEs}, {&l.MaxSubqueries, &d.MaxSubqueries},
		{&l.MaxJoins, &d.MaxJoins}, {&l.MaxDepth, &d.MaxDepth},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return l
}

// Validate reports a negative limit.
func (l Limits) Validate() error {
	if l.MaxBytes < 0 || l.MaxCTEs < 0 || l.MaxSubqueries < 0 || l.MaxJoins < 0 || l.MaxDepth < 0 {
		return fmt.Errorf("query limits must not be negative: %+v", l)
	}
	return nil
}

// CheckLength refuses a query text longer than MaxBytes.
func (l Limits) CheckLength(text string) error {
	l = l.WithDefaults()
	if len(text) > l.MaxBytes {
		return limitAt(0, "max-query-bytes", "the query is %d bytes long; at most %d are allowed", len(text), l.MaxBytes)
	}
	return nil
}

// limitAt is an error at pos for a query over the named limit.
func limitAt(pos int, limit, format string, args ...any) *Error {
	e := errAt(pos, format, args...)
	e.Limit = limit
	return e
}

// ValueLimitMarker ends the message of the runtime errors the sandbox's
// value guards raise inside DuckDB (error() calls), so a store can tell
// them apart from other DuckDB errors and answer them as a query limit.
const ValueLimitMarker = "(query limit max-value-bytes)"

// Size caps for functions whose one call can build an arbitrarily large
// value. DuckDB evaluates such a call on a whole vector of 2,048 rows (and
// folds it when its arguments are constant, already while planning) in
// one piece that cannot be interrupted; lpad, replace and regexp_replace
// build their results in C++ strings outside DuckDB's allocator and
// memory_limit. So the sandbox bounds them statically from literal
// arguments, and guards repeat of a computed value, replace and
// regexp_replace at run time (guardCall): a value reaching them through a
// CTE or a column is checked too.
const (
	// MaxListElements caps the list a scalar range()/generate_series()
	// builds.
	MaxListElements = 1_000_000
	// MaxBuiltString caps the bytes repeat()/lpad()/rpad()/replace()/
	// regexp_replace() may build in one value, and printf/format widths:
	// 16 KiB, the Log Service's own maximum length of a value in SQL. A
	// vector of such values is 32 MiB; lpad, the slowest, builds it in
	// about 0.4 s (90 MB/s), so a query stops within about that of its
	// deadline.
	MaxBuiltString = 16 << 10
	// maxRepeatUnknown caps repeat()'s count when the repeated value is not
	// a literal (its size is unknown).
	maxRepeatUnknown = 1024
	// maxBarWidth caps bar()'s width.
	maxBarWidth = 10_000
)

// sizedFunctions are the calls checkSizedCall bounds.
var sizedFunctions = setOf("range", "generate_series", "repeat", "lpad", "rpad", "bar", "printf", "format", "replace", "regexp_replace")

// callArgs splits the arguments of the call whose '(' is toks[open] at
// top-level commas. It returns nil when the call is not closed.
func callArgs(toks []sqlTok, open int) [][]sqlTok {
	var (
		args  [][]sqlTok
		depth int
		start = open + 1
	)
	for i := open; i < len(toks); i++ {
		t := toks[i]
		if t.kind != sPunct {
			continue
		}
		switch t.text {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
			if depth == 0 {
				if i > start || len(args) > 0 {
					args = append(args, toks[start:i])
				}
				return args
			}
		case ",":
			if depth == 1 {
				args = append(args, toks[start:i])
				start = i + 1
			}
		}
	}
	return nil
}

// numberLiteral returns the value of an argument that is one number
// literal, optionally signed.
func numberLiteral(arg []sqlTok) (float64, bool) {
	sign := 1.0
	if len(arg) == 2 && arg[0].kind == sOp && (arg[0].text == "-" || arg[0].text == "+") {
		if arg[0].text == "-" {
			sign = -1
		}
		arg = arg[1:]
	}
	if len(arg) != 1 || arg[0].kind != sNumber {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(arg[0].text, "_", ""), 64)
	if err != nil {
		return 0, false
	}
	return sign * f, true
}

func stringLiteral(arg []sqlTok) (string, bool) {
	if len(arg) != 1 || arg[0].kind != sString {
		return "", false
	}
	return arg[0].text, true
}

// checkSizedCall bounds the call of fn at toks[i] (toks[i+1] is its '(').
// table is set when the call is a table function in FROM: those stream
// their rows in chunks (interruptible, bounded by the query deadline and
// the result caps), so only scalar calls are checked.
func (c *sqlChecker) checkSizedCall(i int, fn string, table bool) error {
	if table {
		return nil
	}
	t := c.toks[i]
	for _, l := range c.stack {
		if l.kind == "call" && multiplying[l.fn] && multiplying[fn] {
			return errAt(t.pos, "%s() inside %s() is not allowed: it could build an unbounded value", fn, l.fn)
		}
	}
	args := callArgs(c.toks, i+1)
	if args == nil {
		return errAt(c.end, `missing ")"`)
	}
	switch fn {
	case "range", "generate_series":
		if len(args) == 0 || len(args) > 3 {
			return errAt(t.pos, "%s() takes 1 to 3 number arguments", fn)
		}
		var v [3]float64
		for k, a := range args {
			n, ok := numberLiteral(a)
			if !ok {
				return errAt(t.pos, "%s() as a value takes number literals only (it builds the whole list at once, capped at %d elements); use it in FROM (from range(...)) to generate rows", fn, MaxListElements)
			}
			v[k] = n
		}
		start, stop, step := 0.0, v[0], 1.0
		if len(args) >= 2 {
			start, stop = v[0], v[1]
		}
		if len(args) == 3 {
			step = v[2]
		}
		if step == 0 {
			return errAt(t.pos, "%s() step must not be 0", fn)
		}
		if n := (stop - start) / step; n > MaxListElements {
			return limitAt(t.pos, "max-list-elements", "%s() would build %.0f elements; at most %d are allowed in one list", fn, n, MaxListElements)
		}
	case "repeat":
		if len(args) != 2 {
			return nil // DuckDB reports the arity
		}
		n, ok := numberLiteral(args[1])
		if !ok {
			return errAt(t.pos, "repeat() count must be a number literal (at most %d bytes may be built)", MaxBuiltString)
		}
		if s, lit := stringLiteral(args[0]); lit {
			if n*float64(max(len(s), 1)) > MaxBuiltString {
				return limitAt(t.pos, "max-value-bytes", "repeat() would build %.0f bytes; at most %d are allowed", n*float64(len(s)), MaxBuiltString)
			}
		} else {
			if n > maxRepeatUnknown {
				return limitAt(t.pos, "max-value-bytes", "repeat() of a non-literal value may repeat it at most %d times (found %.0f)", maxRepeatUnknown, n)
			}
			c.guardCall(i, args)
		}
	case "replace":
		if len(args) == 3 {
			c.guardCall(i, args)
		}
	case "regexp_replace":
		if len(args) < 3 || len(args) > 4 {
			return nil // DuckDB reports the arity
		}
		if _, ok := stringLiteral(args[2]); !ok {
			return errAt(t.pos, "regexp_replace() replacement must be a string literal (its size is checked)")
		}
		if len(args) == 4 {
			if _, ok := stringLiteral(args[3]); !ok {
				return errAt(t.pos, "regexp_replace() options must be a string literal")
			}
		}
		c.guardCall(i, args)
	case "lpad", "rpad":
		if len(args) < 2 {
			return nil
		}
		n, ok := numberLiteral(args[1])
		if !ok {
			return errAt(t.pos, "%s() length must be a number literal of at most %d", fn, MaxBuiltString)
		}
		if n > MaxBuiltString {
			return limitAt(t.pos, "max-value-bytes", "%s() length must be a number literal of at most %d", fn, MaxBuiltString)
		}
	case "bar":
		if len(args) < 4 {
			return nil
		}
		n, ok := numberLiteral(args[3])
		if !ok || n > maxBarWidth {
			return errAt(t.pos, "bar() width must be a number literal of at most %d", maxBarWidth)
		}
	case "printf", "format":
		if len(args) == 0 {
			return nil
		}
		f, ok := stringLiteral(args[0])
		if !ok {
			return errAt(t.pos, "%s() format must be a string literal", fn)
		}
		if w := maxFormatNumber(f); w > MaxBuiltString {
			return limitAt(t.pos, "max-value-bytes", "%s() format width %d is too large; at most %d is allowed", fn, w, MaxBuiltString)
		}
	}
	return nil
}

// maxFormatNumber returns the largest number inside the format specs of
// a format string: printf's %10.2f, fmt's {:>10}.
func maxFormatNumber(f string) int {
	best, cur, digits := 0, 0, 0
	inSpec := false
	for i := 0; i < len(f); i++ {
		ch := f[i]
		switch {
		case !inSpec:
			inSpec = ch == '%' || ch == '{'
		case ch >= '0' && ch <= '9':
			digits++
			if digits > 9 {
				return int(^uint(0) >> 1)
			}
			cur = cur*10 + int(ch-'0')
			continue
		case ch == '}' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch == '%':
			inSpec = false
		}
		best, cur, digits = max(best, cur), 0, 0
	}
	return max(best, cur)
}

// multiplying are the sized functions whose value grows with an argument:
// one of them inside another could multiply their caps.
var multiplying = setOf("range", "generate_series", "repeat", "lpad", "rpad", "bar")

// guardVar is the lambda parameter of the value guards; the leading
// underscores keep it apart from a user's names.
const guardVar = "__sluice_v"

// guardCall rewrites the call of fn at toks[i] (args as callArgs split
// them) into a run-time check of the value it would build:
//
//	list_transform([{'a0': <arg 0>, ...}], lambda __sluice_v:
//	  CASE WHEN <size> > MaxBuiltString
//	    THEN error('... (query limit max-value-bytes)')
//	    ELSE fn(__sluice_v.a0, <literal arg 1>, ...) END)[1]
//
// The lambda names each computed argument once, so nested guarded calls
// do not multiply the SQL (a macro or a CASE repeating its arguments
// doubles it at every level). Literal arguments stay literals in the
// call (regexp options must be constant, and a constant pattern is
// compiled once). The size is computed before the value is built, from
// the argument sizes; rows under the cap skip the exact computation.
func (c *sqlChecker) guardCall(i int, args [][]sqlTok) {
	fn := c.toks[i].low
	open := i + 1
	closing := c.matching(open)
	// Token index of each argument's first token and of the comma after it.
	starts := make([]int, 0, len(args))
	for j, depth := open+1, 0; j < closing; j++ {
		if depth == 0 && (j == open+1 || c.toks[j-1].punct(",") && depth == 0) {
			starts = append(starts, j)
		}
		switch t := c.toks[j]; {
		case t.punct("(") || t.punct("[") || t.punct("{"):
			depth++
		case t.punct(")") || t.punct("]") || t.punct("}"):
			depth--
		}
	}
	if len(starts) != len(args) {
		return
	}
	ref := make([]string, len(args)) // how the lambda body names each argument
	packed := 0
	for k, a := range args {
		if lit, ok := literalSQL(a); ok {
			ref[k] = lit
			continue
		}
		ref[k] = guardVar + ".a" + strconv.Itoa(k)
		packed++
	}
	if packed == 0 {
		return // all literals: checked statically, folded once
	}
	fail := fmt.Sprintf("error(%s)", quoteSQLString(fmt.Sprintf("%s() would build a value of more than %d bytes %s", fn, MaxBuiltString, ValueLimitMarker)))
	call := fn + "(" + strings.Join(ref, ", ") + ")"
	capN := strconv.Itoa(MaxBuiltString)
	var body string
	switch fn {
	case "repeat":
		body = "CASE WHEN len(" + ref[0] + ") * " + ref[1] + " > " + capN + " THEN " + fail + " ELSE " + call + " END"
	case "replace":
		s, f, r := "strlen("+ref[0]+")", "strlen("+ref[1]+")", "strlen("+ref[2]+")"
		// Replacing n occurrences of f by r adds n*(len r - len f) bytes.
		cheap := s + " + (" + s + " // greatest(" + f + ", 1)) * (" + r + " - " + f + ")"
		exact := s + " + ((" + s + " - strlen(replace(" + ref[0] + ", " + ref[1] + ", ''))) // greatest(" + f + ", 1)) * (" + r + " - " + f + ")"
		body = "CASE WHEN " + r + " <= " + f + " OR " + cheap + " <= " + capN + " THEN " + call +
			" WHEN " + exact + " > " + capN + " THEN " + fail + " ELSE " + call + " END"
	case "regexp_replace":
		rep, _ := stringLiteral(args[2])
		refs, lit := replacementSize(rep)
		opts := ""
		if len(args) == 4 {
			opts, _ = stringLiteral(args[3])
		}
		global := strings.Contains(opts, "g")
		if refs == 0 && (lit == 0 || !global) {
			// One replacement without group references adds at most the
			// literal (bounded by the query text).
			return
		}
		s, L, R := "strlen("+ref[0]+")", strconv.Itoa(lit), strconv.Itoa(refs)
		matches := "1"
		if global {
			matches = "len(regexp_extract_all(" + ref[0] + ", " + ref[1] + ", 0, " + quoteSQLString(strings.ReplaceAll(opts, "g", "")) + "))"
		}
		// Each match becomes the literal plus the referenced groups, which
		// are parts of the value: at most len(s)*(1+refs) + matches*lit.
		cheap := s + " * (1 + " + R + ") + (" + s + " + 1) * " + L
		bound := s + " * (1 + " + R + ") + " + matches + " * " + L
		body = "CASE WHEN " + cheap + " <= " + capN + " THEN " + call +
			" WHEN " + bound + " > " + capN + " AND " + bound + " > " + s + " THEN " + fail + " ELSE " + call + " END"
	default:
		return
	}
	// fn ( a0 , 'lit' , a2 ) → list_transform ( [ { 'a0' : a0 , 'a2' : a2 } ] , lambda ... ) [ 1 ]
	c.toks[i].out = "list_transform"
	first := true
	for k, st := range starts {
		end := closing
		if k+1 < len(starts) {
			end = starts[k+1] - 1 // the comma
		}
		if k > 0 {
			c.toks[st-1].drop = true // the comma before it
		}
		if strings.HasPrefix(ref[k], guardVar) {
			sep := ", "
			if first {
				sep, first = "[ { ", false
			}
			c.toks[st].before = " " + sep + "'a" + strconv.Itoa(k) + "' :" + c.toks[st].before
			continue
		}
		for j := st; j < end; j++ {
			c.toks[j].drop = true
		}
	}
	c.toks[closing].out = "} ] , lambda " + guardVar + " : " + body + " ) [ 1 ]"
}

// literalSQL renders an argument that is one literal (a string, or a
// number, optionally signed) as SQL.
func literalSQL(arg []sqlTok) (string, bool) {
	if s, ok := stringLiteral(arg); ok {
		return quoteSQLString(s), true
	}
	if _, ok := numberLiteral(arg); ok {
		var b strings.Builder
		for _, t := range arg {
			b.WriteString(t.text)
		}
		return b.String(), true
	}
	return "", false
}

// matching returns the index of the bracket closing toks[open].
func (c *sqlChecker) matching(open int) int {
	depth := 0
	for j := open; j < len(c.toks); j++ {
		switch t := c.toks[j]; {
		case t.punct("(") || t.punct("[") || t.punct("{"):
			depth++
		case t.punct(")") || t.punct("]") || t.punct("}"):
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return len(c.toks) - 1
}

// replacementSize counts the group references (\0-\9) of a regexp_replace
// replacement and the bytes of its literal rest.
func replacementSize(r string) (refs, lit int) {
	for i := 0; i < len(r); i++ {
		if r[i] == '\\' && i+1 < len(r) {
			if r[i+1] >= '0' && r[i+1] <= '9' {
				refs++
			} else {
				lit++
			}
			i++
			continue
		}
		lit++
	}
	return refs, lit
}

func quoteSQLString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func errLimitCTEs(pos, max int) error {
	return limitAt(pos, "max-ctes", "the SQL defines more than %d CTEs (WITH entries)", max)
}
