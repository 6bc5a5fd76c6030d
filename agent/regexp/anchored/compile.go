package anchored

import (
	"regexp/syntax"
	"unicode"
	"unicode/utf8"
)

type opcode uint8

const (
	opMatch opcode = iota // success; records the end of group 0
	opLit                 // literal bytes
	opRep                 // run of bytes from a byte class, min..max long
	opRune                // one rune of a class that holds every non-ASCII rune
	opSave                // record the position in a capture slot
	opAlt                 // try alternatives in order
	opEmpty               // empty-width assertion
)

type scanKind uint8

const (
	scanTable scanKind = iota // byte-table loop
	scanAll                   // every byte is in the class: jump
	scanStop                  // all bytes but one: memchr for it
)

type inst struct {
	op      opcode
	greedy  bool
	det     bool // opRep: the run's end is forced; never backtrack into it
	high    bool // opRep: the class holds every non-ASCII rune
	restore bool // opSave: inside an alternative; undo on failure
	scan    scanKind
	stop    byte
	empty   syntax.EmptyOp
	min     int
	max     int // -1: unbounded
	slot    int
	next    int
	lit     string
	set     *[256]bool // opRep, opRune (ASCII part)
	alts    []int
	// follow filters the candidate ends of a backtracking run: the
	// continuation can only succeed at p < len(in) if follow[in[p]] or
	// followEmpty.
	follow      *[256]bool
	followEmpty bool
}

type program struct {
	insts []inst
	start int
}

type compiler struct {
	prog   []inst
	inAlt  int
	failed bool
	caps   bool
}

// compileProgram returns nil when the pattern has a construct whose
// equivalence with regexp cannot be guaranteed.
func compileProgram(re *syntax.Regexp, caps bool) *program {
	c := &compiler{caps: caps}
	match := c.emit(inst{op: opMatch})
	start := c.comp(re, match)
	if c.failed {
		return nil
	}
	if !c.analyse() {
		return nil
	}
	return &program{insts: c.prog, start: start}
}

func (c *compiler) emit(i inst) int {
	c.prog = append(c.prog, i)
	return len(c.prog) - 1
}

func (c *compiler) fail() int {
	c.failed = true
	return 0
}

// comp compiles re so that a successful match of re continues at next, and
// returns the entry point.
func (c *compiler) comp(re *syntax.Regexp, next int) int {
	if c.failed {
		return 0
	}
	switch re.Op {
	case syntax.OpEmptyMatch:
		return next
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			for i := len(re.Rune) - 1; i >= 0; i-- {
				set, ok := foldSet(re.Rune[i])
				if !ok {
					return c.fail()
				}
				next = c.emit(newRep(set, 1, 1, true, next))
			}
			return next
		}
		buf := make([]byte, 0, len(re.Rune))
		for _, r := range re.Rune {
			if r == utf8.RuneError || !utf8.ValidRune(r) {
				// regexp matches U+FFFD against any invalid byte.
				return c.fail()
			}
			buf = utf8.AppendRune(buf, r)
		}
		return c.emit(inst{op: opLit, lit: string(buf), next: next})
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		set, high, ok := classSet(re)
		if !ok {
			return c.fail()
		}
		if high {
			return c.emit(inst{op: opRune, set: set, next: next})
		}
		return c.emit(newRep(set, 1, 1, true, next))
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText:
		return c.emit(inst{op: opEmpty, empty: emptyOp(re.Op), next: next})
	case syntax.OpCapture:
		if !c.caps {
			return c.comp(re.Sub[0], next)
		}
		end := c.emit(inst{op: opSave, slot: 2*re.Cap + 1, restore: c.inAlt > 0, next: next})
		body := c.comp(re.Sub[0], end)
		return c.emit(inst{op: opSave, slot: 2 * re.Cap, restore: c.inAlt > 0, next: body})
	case syntax.OpConcat:
		for i := len(re.Sub) - 1; i >= 0; i-- {
			next = c.comp(re.Sub[i], next)
		}
		return next
	case syntax.OpAlternate:
		c.inAlt++
		alts := make([]int, len(re.Sub))
		for i, sub := range re.Sub {
			alts[i] = c.comp(sub, next)
		}
		c.inAlt--
		return c.emit(inst{op: opAlt, alts: alts, next: next})
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		return c.compRepeat(re, next)
	default:
		// OpNoMatch, word boundaries: leave to regexp.
		return c.fail()
	}
}

func (c *compiler) compRepeat(re *syntax.Regexp, next int) int {
	lo, hi := 0, -1
	switch re.Op {
	case syntax.OpPlus:
		lo = 1
	case syntax.OpQuest:
		hi = 1
	case syntax.OpRepeat:
		lo, hi = re.Min, re.Max
	}
	greedy := re.Flags&syntax.NonGreedy == 0
	sub := re.Sub[0]
	if set, high, ok := singleClass(sub); ok {
		if !high {
			return c.emit(newRep(set, lo, hi, greedy, next))
		}
		// Runs over non-ASCII runes count runes, not bytes: only an
		// unbounded run with min <= 1 can be matched byte-wise. Counted
		// runs unroll into single-rune steps the way regexp's Simplify
		// does (x{n,} = x^(n-1) x+, x{n,m} = x^n (x(x)?)?).
		if hi == -1 {
			if lo > 17 {
				return c.fail()
			}
			t := next
			if lo <= 1 {
				return c.emit(newRep(set, lo, hi, greedy, next))
			}
			t = c.emit(newRep(set, 1, -1, greedy, t))
			for i := 0; i < lo-1; i++ {
				t = c.emit(inst{op: opRune, set: set, next: t})
			}
			return t
		}
		if hi > 16 {
			return c.fail()
		}
		t := next
		for i := 0; i < hi-lo; i++ {
			body := c.emit(inst{op: opRune, set: set, next: t})
			t = c.emit(alt2(greedy, body, next))
		}
		for i := 0; i < lo; i++ {
			t = c.emit(inst{op: opRune, set: set, next: t})
		}
		return t
	}
	if hi == -1 || hi > 16 {
		// Repeated groups: leave to regexp.
		return c.fail()
	}
	// x{lo,hi} = lo copies of x, then (x(x(...)?)?)? nested hi-lo deep —
	// the same expansion regexp's Simplify performs, so captures inside keep
	// regexp's "last iteration wins" values.
	t := next
	for i := 0; i < hi-lo; i++ {
		c.inAlt++
		body := c.comp(sub, t)
		c.inAlt--
		t = c.emit(alt2(greedy, body, next))
	}
	for i := 0; i < lo; i++ {
		t = c.comp(sub, t)
	}
	return t
}

func alt2(greedy bool, body, skip int) inst {
	if greedy {
		return inst{op: opAlt, alts: []int{body, skip}, next: skip}
	}
	return inst{op: opAlt, alts: []int{skip, body}, next: skip}
}

func newRep(set *[256]bool, lo, hi int, greedy bool, next int) inst {
	r := inst{op: opRep, set: set, min: lo, max: hi, greedy: greedy, next: next}
	n, missing := 0, -1
	for b, in := range set {
		if in {
			n++
		} else {
			missing = b
		}
	}
	switch n {
	case 256:
		r.scan = scanAll
	case 255:
		r.scan, r.stop = scanStop, byte(missing)
	}
	return r
}

// highSet returns set with every byte >= 0x80 added: a class that holds all
// non-ASCII runes matches every byte of their encodings and every invalid
// byte (regexp decodes those to U+FFFD, which the class holds too).
func highSet(set *[256]bool) *[256]bool {
	s := *set
	for b := 0x80; b < 256; b++ {
		s[b] = true
	}
	return &s
}

func emptyOp(op syntax.Op) syntax.EmptyOp {
	switch op {
	case syntax.OpBeginLine:
		return syntax.EmptyBeginLine
	case syntax.OpEndLine:
		return syntax.EmptyEndLine
	case syntax.OpBeginText:
		return syntax.EmptyBeginText
	default:
		return syntax.EmptyEndText
	}
}

// singleClass reports whether re matches exactly one rune from a class, and
// returns the class's ASCII byte set and whether it holds every non-ASCII
// rune (high).
func singleClass(re *syntax.Regexp) (set *[256]bool, high, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) != 1 {
			return nil, false, false
		}
		r := re.Rune[0]
		if re.Flags&syntax.FoldCase != 0 {
			set, ok := foldSet(r)
			return set, false, ok
		}
		if r >= utf8.RuneSelf {
			return nil, false, false
		}
		var s [256]bool
		s[r] = true
		return &s, false, true
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return classSet(re)
	case syntax.OpCapture:
		return nil, false, false
	}
	return nil, false, false
}

// foldSet returns the byte set of a case-folded ASCII rune; false when the
// fold orbit reaches non-ASCII runes (k → U+212A KELVIN SIGN, s → U+017F).
func foldSet(r rune) (*[256]bool, bool) {
	var s [256]bool
	for f := r; ; {
		if f >= utf8.RuneSelf {
			return nil, false
		}
		s[f] = true
		f = unicode.SimpleFold(f)
		if f == r {
			break
		}
	}
	return &s, true
}

// classSet converts a class to an ASCII byte set. high reports that the
// class holds every rune >= 0x80; a class holding only some of them cannot
// be matched byte-wise (ok=false).
func classSet(re *syntax.Regexp) (set *[256]bool, high, ok bool) {
	var ranges []rune
	switch re.Op {
	case syntax.OpAnyChar:
		ranges = []rune{0, unicode.MaxRune}
	case syntax.OpAnyCharNotNL:
		ranges = []rune{0, '\n' - 1, '\n' + 1, unicode.MaxRune}
	default:
		ranges = re.Rune
	}
	var s [256]bool
	covered := rune(0x80) // next non-ASCII rune not yet known to be in the class
	anyHigh := false
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		for r := lo; r <= hi && r < utf8.RuneSelf; r++ {
			s[r] = true
		}
		if hi >= utf8.RuneSelf {
			anyHigh = true
			if lo < utf8.RuneSelf {
				lo = utf8.RuneSelf
			}
			if lo <= covered && hi >= covered {
				covered = hi + 1
			}
		}
	}
	full := covered > unicode.MaxRune
	if anyHigh && !full {
		return nil, false, false
	}
	if full {
		return highSet(&s), true, true
	}
	return &s, false, true
}

// firstInfo describes how the continuation starting at an instruction can
// begin.
type firstInfo struct {
	set      [256]bool // bytes it can consume first
	matchNow bool      // it can reach opMatch without consuming (Prefix mode)
	assert   bool      // it passes a non-end assertion before consuming
}

// analyse computes the follow sets and marks runs whose end is forced.
func (c *compiler) analyse() bool {
	memo := make(map[int]*firstInfo)
	var first func(pc int) *firstInfo
	first = func(pc int) *firstInfo {
		if fi, ok := memo[pc]; ok {
			return fi
		}
		fi := &firstInfo{}
		memo[pc] = fi
		in := &c.prog[pc]
		switch in.op {
		case opMatch:
			fi.matchNow = true
		case opLit:
			fi.set[in.lit[0]] = true
		case opRep:
			fi.set = *in.set
			if in.min == 0 {
				merge(fi, first(in.next))
			}
		case opRune:
			fi.set = *highSet(in.set)
		case opSave:
			merge(fi, first(in.next))
		case opAlt:
			for _, a := range in.alts {
				merge(fi, first(a))
			}
		case opEmpty:
			if in.empty != syntax.EmptyEndText {
				// EndText only passes at the end of input; the others may
				// pass anywhere, so treat them as opaque.
				fi.assert = true
				merge(fi, first(in.next))
			}
		}
		return fi
	}
	for pc := range c.prog {
		in := &c.prog[pc]
		if in.op != opRep {
			continue
		}
		fi := first(in.next)
		follow := fi.set
		in.follow = &follow
		in.followEmpty = fi.matchNow || fi.assert
		disjoint := true
		for b := range 256 {
			if follow[b] && in.set[b] {
				disjoint = false
				break
			}
		}
		in.det = disjoint && !in.followEmpty
		// A backtracking run over non-ASCII runes must not end inside a
		// multi-byte rune; backtrack skips such ends (see insideRune).
		in.high = in.set[0x80]
	}
	return true
}

func merge(dst, src *firstInfo) {
	for b, in := range src.set {
		if in {
			dst.set[b] = true
		}
	}
	dst.matchNow = dst.matchNow || src.matchNow
	dst.assert = dst.assert || src.assert
}
