// Package anchored matches regular expressions anchored at the start of the
// input — the way Logtail applies its regexes: parse regexes must match the
// whole event (boost regex_match) and multiline patterns a prefix of the line
// (regex_search with match_continuous) — with exactly the submatch results of
// Go's regexp package (RE2 leftmost-first semantics), several times faster on
// the shapes log regexes have.
//
// Why hand-written: Go's regexp interprets generic instructions rune by rune
// (~66 MiB/s on an nginx access-log regex). Log regexes are mostly sequences
// of literals and character-class runs whose end is decided by a single byte
// (`([^ ]*) `, `"([^"]*)"`, `(\d+)`). Compile turns the regexp/syntax tree of
// such a pattern into a small program of literal compares, byte-table loops
// and memchr scans, run by a backtracker that tries alternatives in the
// priority order RE2 defines (so the first success is the leftmost-first
// match), and proves at compile time where a run's end is forced so no
// backtracking is needed. No general-purpose library does this; the pieces
// are the standard library's own parser and, as the reference and fallback,
// its matcher.
//
// Exactness rules: runs over classes containing non-ASCII runes are matched
// byte by byte only where that cannot differ from rune-by-rune matching
// (every non-ASCII rune and every invalid byte is in the class, the run is
// unbounded, and backtracking can never stop inside a multi-byte rune).
// Anything the compiler cannot prove equivalent — word boundaries, repeated
// groups, case folding that reaches non-ASCII runes, counted repeats of
// multi-byte runes, U+FFFD in the pattern — runs on regexp itself, and so
// does any input on which backtracking would exceed a linear work budget.
// FuzzDifferential checks the equivalence against regexp.
package anchored

import (
	"fmt"
	"regexp"
	"regexp/syntax"
)

// Anchor says how much of the input a match must cover.
type Anchor uint8

const (
	// Full requires the match to span the whole input: \A(?:expr)\z.
	Full Anchor = iota + 1
	// Prefix requires the match to start at the beginning of the input:
	// \A(?:expr).
	Prefix
)

// Options control compilation.
type Options struct {
	Anchor Anchor
	// DotNL makes `.` match '\n' (the (?s) flag), as boost's `.` does by
	// default; multi-line events then parse the way they do in Logtail.
	DotNL bool
	// MultiLine makes `^` and `$` match at line breaks (the (?m) flag), like
	// boost's default.
	MultiLine bool
}

// Regexp is a compiled anchored regular expression. It is safe for
// concurrent use.
type Regexp struct {
	expr    string
	std     *regexp.Regexp
	capProg *program // nil when the pattern needs regexp
	boolPrg *program // same without capture bookkeeping, for Match
	ncap    int
}

// Compile parses expr (RE2 syntax, as Go's regexp accepts) and prepares it
// for anchored matching.
func Compile(expr string, opts Options) (*Regexp, error) {
	if opts.Anchor != Full && opts.Anchor != Prefix {
		return nil, fmt.Errorf("compile %q: anchor must be Full or Prefix", expr)
	}
	// Validate the pattern on its own first: wrapping an unbalanced pattern
	// such as `a)(b` in a group would otherwise make it valid.
	if _, err := syntax.Parse(expr, syntax.Perl); err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	wrapped := Wrap(expr, opts)
	std, err := regexp.Compile(wrapped)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	re := &Regexp{expr: expr, std: std, ncap: std.NumSubexp()}
	tree, err := syntax.Parse(wrapped, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	re.capProg = compileProgram(tree, true)
	if re.capProg != nil {
		re.boolPrg = compileProgram(tree, false)
	}
	return re, nil
}

// Wrap returns the Go regexp source whose unanchored semantics equal the
// anchored semantics of expr under opts; Compile's results are exactly
// regexp.MustCompile(Wrap(expr, opts)).FindSubmatchIndex.
func Wrap(expr string, opts Options) string {
	flags := ""
	if opts.DotNL {
		flags += "s"
	}
	if opts.MultiLine {
		flags += "m"
	}
	build := func(quoteEnd string) string {
		w := `\A(?` + flags + `:` + expr + quoteEnd + `)`
		if opts.Anchor == Full {
			w += `\z`
		}
		return w
	}
	w := build("")
	if _, err := syntax.Parse(w, syntax.Perl); err != nil {
		// A valid pattern only breaks when wrapped if it ends inside an
		// unterminated \Q quote, which swallows the wrapper; close it.
		w = build(`\E`)
	}
	return w
}

// MustCompile is Compile for patterns known to be valid (tests, presets).
func MustCompile(expr string, opts Options) *Regexp {
	re, err := Compile(expr, opts)
	if err != nil {
		panic(err)
	}
	return re
}

// String returns the source pattern.
func (re *Regexp) String() string { return re.expr }

// NumSubexp is the number of capturing groups.
func (re *Regexp) NumSubexp() int { return re.ncap }

// SubexpNames returns the names of the capturing groups as regexp does.
func (re *Regexp) SubexpNames() []string { return re.std.SubexpNames() }

// Specialised reports whether matching runs on the compiled fast path (true)
// or always on regexp (false).
func (re *Regexp) Specialised() bool { return re.capProg != nil }

// Match reports whether b matches.
func (re *Regexp) Match(b []byte) bool {
	if re.boolPrg == nil {
		return re.std.Match(b)
	}
	m := machine{prog: re.boolPrg.insts, in: b, budget: budget(len(b))}
	if m.run(re.boolPrg.start, 0) {
		return true
	}
	if m.aborted {
		return re.std.Match(b)
	}
	return false
}

// FindSubmatchIndex matches b and returns the submatch boundaries as
// regexp.FindSubmatchIndex does (pairs of byte offsets, -1 for groups that
// did not participate), appended to dst[:0] so a caller reusing dst does not
// allocate. It returns nil when b does not match.
func (re *Regexp) FindSubmatchIndex(dst []int, b []byte) []int {
	n := 2 * (re.ncap + 1)
	if cap(dst) < n {
		dst = make([]int, n)
	}
	dst = dst[:n]
	if re.capProg == nil {
		return re.fallback(dst, b)
	}
	for i := range dst {
		dst[i] = -1
	}
	dst[0] = 0
	m := machine{prog: re.capProg.insts, in: b, caps: dst, budget: budget(len(b))}
	if m.run(re.capProg.start, 0) {
		return dst
	}
	if m.aborted {
		return re.fallback(dst, b)
	}
	return nil
}

func (re *Regexp) fallback(dst []int, b []byte) []int {
	loc := re.std.FindSubmatchIndex(b)
	if loc == nil {
		return nil
	}
	return append(dst[:0], loc...)
}

// budget bounds the backtracking work (bytes scanned plus attempts) before
// the matcher hands the input to regexp, whose worst case is linear.
func budget(n int) int { return 8*n + 512 }
