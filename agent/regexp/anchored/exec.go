package anchored

import (
	"bytes"
	"regexp/syntax"
	"unicode/utf8"
)

// machine is one match attempt. Backtracking explores choices in RE2's
// priority order (greedy runs longest first, lazy shortest first,
// alternatives left to right), so the first success is the leftmost-first
// match regexp reports.
type machine struct {
	prog    []inst
	in      []byte
	caps    []int // nil for boolean matching
	budget  int
	aborted bool
}

func (m *machine) run(pc, pos int) bool {
	for {
		in := &m.prog[pc]
		switch in.op {
		case opMatch:
			if m.caps != nil {
				m.caps[1] = pos
			}
			return true
		case opLit:
			l := len(in.lit)
			if len(m.in)-pos < l || string(m.in[pos:pos+l]) != in.lit {
				return false
			}
			pos += l
		case opSave:
			if in.restore {
				old := m.caps[in.slot]
				m.caps[in.slot] = pos
				if m.run(in.next, pos) {
					return true
				}
				m.caps[in.slot] = old
				return false
			}
			// Outside alternatives every successful path passes here again,
			// so a stale value from a failed path is always overwritten.
			m.caps[in.slot] = pos
		case opEmpty:
			if !m.assert(in.empty, pos) {
				return false
			}
		case opRune:
			if pos >= len(m.in) {
				return false
			}
			if c := m.in[pos]; c < utf8.RuneSelf {
				if !in.set[c] {
					return false
				}
				pos++
			} else {
				_, w := utf8.DecodeRune(m.in[pos:])
				pos += w
			}
		case opRep:
			n := m.scan(in, pos)
			if n < in.min {
				return false
			}
			if !in.det {
				return m.backtrack(in, pos, n)
			}
			pos += n
		case opAlt:
			last := len(in.alts) - 1
			for _, a := range in.alts[:last] {
				if m.budget--; m.budget < 0 {
					m.aborted = true
					return false
				}
				if m.run(a, pos) {
					return true
				}
				if m.aborted {
					return false
				}
			}
			pc = in.alts[last]
			continue
		}
		pc = in.next
	}
}

// scan returns the length of the longest run of class bytes at pos,
// capped at the run's maximum.
func (m *machine) scan(in *inst, pos int) int {
	rest := m.in[pos:]
	if in.max >= 0 && len(rest) > in.max {
		rest = rest[:in.max]
	}
	n := len(rest)
	switch in.scan {
	case scanStop:
		if i := bytes.IndexByte(rest, in.stop); i >= 0 {
			n = i
		}
	case scanTable:
		set := in.set
		for i, c := range rest {
			if !set[c] {
				n = i
				break
			}
		}
	}
	m.budget -= n
	return n
}

// backtrack tries the continuation after every admissible run length, in
// priority order.
func (m *machine) backtrack(in *inst, pos, n int) bool {
	try := func(end int) bool {
		if end < len(m.in) {
			c := m.in[end]
			if !in.follow[c] && !in.followEmpty {
				return false
			}
			if in.high && c >= 0x80 && c < 0xC0 && insideRune(m.in, end) {
				// regexp only stops a run on rune boundaries.
				return false
			}
		}
		if m.budget--; m.budget < 0 {
			m.aborted = true
			return false
		}
		return m.run(in.next, end)
	}
	if in.greedy {
		for k := n; k >= in.min; k-- {
			if try(pos + k) {
				return true
			}
			if m.aborted {
				return false
			}
		}
		return false
	}
	for k := in.min; k <= n; k++ {
		if try(pos + k) {
			return true
		}
		if m.aborted {
			return false
		}
	}
	return false
}

func (m *machine) assert(op syntax.EmptyOp, pos int) bool {
	switch op {
	case syntax.EmptyBeginText:
		return pos == 0
	case syntax.EmptyEndText:
		return pos == len(m.in)
	case syntax.EmptyBeginLine:
		return pos == 0 || m.in[pos-1] == '\n'
	case syntax.EmptyEndLine:
		return pos == len(m.in) || m.in[pos] == '\n'
	}
	return false
}

// insideRune reports whether p is strictly inside a valid multi-byte UTF-8
// sequence. regexp decodes input rune by rune, an invalid byte being a rune
// of its own, so these are exactly the positions it never visits; a lead
// byte always starts a sequence, so the answer is local.
func insideRune(in []byte, p int) bool {
	for k := 1; k <= utf8.UTFMax-1 && p-k >= 0; k++ {
		c := in[p-k]
		if c < 0x80 {
			return false
		}
		if c >= 0xC0 {
			_, w := utf8.DecodeRune(in[p-k:])
			return w > k
		}
	}
	return false
}
