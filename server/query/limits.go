package query

import (
	"strconv"
	"strings"
)

// Size caps for functions whose one call can build an arbitrarily large
// value. DuckDB evaluates such a call (and folds it when its arguments are
// constant, already while planning) in one piece: it cannot be interrupted
// and its memory is not governed by memory_limit. So the sandbox bounds
// them statically, from literal arguments.
const (
	// MaxListElements caps the list a scalar range()/generate_series()
	// builds.
	MaxListElements = 1_000_000
	// MaxBuiltString caps the bytes repeat()/lpad()/rpad() may build, and
	// printf/format widths.
	MaxBuiltString = 1 << 20
	// maxRepeatUnknown caps repeat()'s count when the repeated value is not
	// a literal (its size is unknown).
	maxRepeatUnknown = 1024
	// maxBarWidth caps bar()'s width.
	maxBarWidth = 10_000
)

// sizedFunctions are the calls checkSizedCall bounds.
var sizedFunctions = setOf("range", "generate_series", "repeat", "lpad", "rpad", "bar", "printf", "format")

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
		if l.kind == "call" && sizedFunctions[l.fn] && l.fn != "printf" && l.fn != "format" && fn != "printf" && fn != "format" {
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
			return errAt(t.pos, "%s() would build %.0f elements; at most %d are allowed in one list", fn, n, MaxListElements)
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
				return errAt(t.pos, "repeat() would build %.0f bytes; at most %d are allowed", n*float64(len(s)), MaxBuiltString)
			}
		} else if n > maxRepeatUnknown {
			return errAt(t.pos, "repeat() of a non-literal value may repeat it at most %d times (found %.0f)", maxRepeatUnknown, n)
		}
	case "lpad", "rpad":
		if len(args) < 2 {
			return nil
		}
		n, ok := numberLiteral(args[1])
		if !ok || n > MaxBuiltString {
			return errAt(t.pos, "%s() length must be a number literal of at most %d", fn, MaxBuiltString)
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
			return errAt(t.pos, "%s() format width %d is too large; at most %d is allowed", fn, w, MaxBuiltString)
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
