package anchored

import (
	"regexp/syntax"
	"strings"
	"testing"
)

// patternGen turns fuzzer bytes into regular expressions built from the
// pieces log regexes use, so the fuzzer spends its time on interesting
// patterns instead of syntax errors.
type patternGen struct {
	data []byte
	i    int
}

func (g *patternGen) next() byte {
	if g.i >= len(g.data) {
		return 0
	}
	b := g.data[g.i]
	g.i++
	return b
}

var genAtoms = []string{
	"a", "b", "ab", " ", "-", `"`, "é", "世", `\.`, `\[`, `\]`, "x",
	".", `\S`, `\s`, `\d`, `\w`, `[^ ]`, `[^"]`, `[a-c]`, `[^a]`, `[\d.]`,
	`[é-ü]`, `\pL`, `[^\]]`, `(?i)a`, `(?i)k`, `\x{FFFD}`, `[^\n]`,
}

var genQuants = []string{"", "", "", "*", "+", "?", "*?", "+?", "??", "{2}", "{1,3}", "{2,}", "{0,2}?"}

// Groups mostly get quantifiers the fast path supports; `*` and `+` on a
// group (regexp-only) stay possible.
var genGroupQuants = []string{"", "", "", "?", "??", "{2}", "{1,3}", "{0,2}?", "*", "+"}

func (g *patternGen) alternation(depth int) string {
	s := g.concat(depth)
	if depth < 3 && g.next()%5 == 0 {
		s += "|" + g.alternation(depth+1)
	}
	return s
}

func (g *patternGen) concat(depth int) string {
	n := 1 + int(g.next()%4)
	var sb strings.Builder
	for range n {
		sb.WriteString(g.term(depth))
	}
	return sb.String()
}

func (g *patternGen) term(depth int) string {
	var atom string
	switch c := g.next() % 16; {
	case c < 9 || depth >= 3:
		atom = genAtoms[int(g.next())%len(genAtoms)]
	case c < 12:
		atom = "(" + g.alternation(depth+1) + ")"
	case c < 14:
		atom = "(?:" + g.alternation(depth+1) + ")"
	case c == 14:
		return [...]string{"^", "$", "^", "$", `\b`, `\A`}[g.next()%6]
	default:
		return "(" + g.alternation(depth+1) + ")" + genGroupQuants[int(g.next())%len(genGroupQuants)]
	}
	if strings.HasPrefix(atom, "(") {
		return atom + genGroupQuants[int(g.next())%len(genGroupQuants)]
	}
	return atom + genQuants[int(g.next())%len(genQuants)]
}

var genInput = []string{"a", "b", " ", "-", `"`, "é", "世", ".", "[", "]", "x", "1", "\t", "\n", "\xff", "\xe2\x82", "\ufffd", "k", "\u212a", "ab"}

func genBytes(seed []byte) []byte {
	var out []byte
	for _, b := range seed {
		out = append(out, genInput[int(b)%len(genInput)]...)
	}
	return out
}

// FuzzDifferential checks that Compile's matcher returns exactly what
// regexp returns for the wrapped pattern, on generated and raw patterns and
// inputs.
func FuzzDifferential(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6}, []byte{0, 1, 2, 3}, uint8(0))
	f.Add([]byte(`(\S+) - (\S+) \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)".*`),
		[]byte(`1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 12 "-" "curl"`), uint8(12))
	f.Add([]byte(`(.*?) (.*)`), []byte("a b c"), uint8(13))
	f.Add([]byte(`(a|ab)(c|bcd)(d*)`), []byte("abcd"), uint8(14))
	f.Add([]byte{9, 11, 200, 7, 3, 12, 12, 40, 9, 1, 8, 90}, []byte{5, 5, 14, 6, 6, 16, 13, 2}, uint8(3))
	f.Add([]byte{12, 3, 9, 17, 4, 6, 1, 10, 2, 9, 25, 3}, []byte{5, 14, 15, 5, 0, 0}, uint8(1))
	f.Fuzz(func(t *testing.T, pat, input []byte, mode uint8) {
		var expr string
		if mode&8 != 0 {
			expr = string(pat)
		} else {
			g := &patternGen{data: pat}
			expr = g.alternation(0)
		}
		if len(expr) > 300 || len(input) > 4096 {
			return
		}
		if _, err := syntax.Parse(expr, syntax.Perl); err != nil {
			return
		}
		opts := Options{Anchor: Full, DotNL: mode&2 != 0, MultiLine: mode&4 != 0}
		if mode&1 != 0 {
			opts.Anchor = Prefix
		}
		in := input
		if mode&16 == 0 {
			in = genBytes(input)
		}
		same(t, expr, opts, in)
	})
}
