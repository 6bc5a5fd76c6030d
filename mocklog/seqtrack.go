package mocklog

import (
	"fmt"
	"math/bits"
	"strings"
)

// SeqTracker records which sequence numbers a collector delivered, to prove
// nothing was lost (Missing) and to measure redelivery under at-least-once
// (Duplicates). A bitmap: 10 million events cost 1.25 MB. Not safe for
// concurrent use.
type SeqTracker struct {
	bits  []uint64
	count uint64 // distinct numbers seen
	dups  uint64
	max   uint64
}

// Add records seq and reports whether it was new.
func (t *SeqTracker) Add(seq uint64) bool {
	w := seq / 64
	if w >= uint64(len(t.bits)) {
		grown := make([]uint64, max(w+1, uint64(2*len(t.bits))))
		copy(grown, t.bits)
		t.bits = grown
	}
	mask := uint64(1) << (seq % 64)
	if t.bits[w]&mask != 0 {
		t.dups++
		return false
	}
	t.bits[w] |= mask
	if t.count == 0 || seq > t.max {
		t.max = seq
	}
	t.count++
	return true
}

// AddLine records the sequence number in line, if it has one (see ParseSeq).
func (t *SeqTracker) AddLine(line []byte) bool {
	seq, ok := ParseSeq(line)
	if ok {
		t.Add(seq)
	}
	return ok
}

// Count is the number of distinct sequence numbers seen.
func (t *SeqTracker) Count() uint64 { return t.count }

// Duplicates is how many Adds repeated a number already seen.
func (t *SeqTracker) Duplicates() uint64 { return t.dups }

// Range is an inclusive range of sequence numbers.
type Range struct{ First, Last uint64 }

func (r Range) String() string {
	if r.First == r.Last {
		return fmt.Sprint(r.First)
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// Missing lists the numbers in first…last that were never added, as ranges.
func (t *SeqTracker) Missing(first, last uint64) []Range {
	var out []Range
	for s := first; s <= last; {
		if t.has(s) {
			// Skip whole words of seen numbers quickly.
			if s%64 == 0 && s/64 < uint64(len(t.bits)) && t.bits[s/64] == ^uint64(0) && s+63 <= last {
				s += 64
			} else {
				s++
			}
			if s == 0 { // wrapped past MaxUint64
				break
			}
			continue
		}
		r := Range{First: s, Last: s}
		for r.Last < last && !t.has(r.Last+1) {
			w := (r.Last + 1) / 64
			if (r.Last+1)%64 == 0 && (w >= uint64(len(t.bits)) || t.bits[w] == 0) && r.Last+64 <= last {
				r.Last += 64
				continue
			}
			r.Last++
		}
		out = append(out, r)
		if r.Last == last {
			break
		}
		s = r.Last + 1
	}
	return out
}

func (t *SeqTracker) has(seq uint64) bool {
	w := seq / 64
	return w < uint64(len(t.bits)) && t.bits[w]&(uint64(1)<<(seq%64)) != 0
}

// Summary describes coverage of first…last in one line, e.g. for a test
// failure: "9998/10000 delivered, 3 duplicates, missing 17, 4000".
func (t *SeqTracker) Summary(first, last uint64) string {
	missing := t.Missing(first, last)
	var lost uint64
	var parts []string
	for i, r := range missing {
		lost += r.Last - r.First + 1
		if i < 10 {
			parts = append(parts, r.String())
		}
	}
	s := fmt.Sprintf("%d/%d delivered, %d duplicates", last-first+1-lost, last-first+1, t.dups)
	if len(missing) > 0 {
		s += ", missing " + strings.Join(parts, ", ")
		if len(missing) > 10 {
			s += fmt.Sprintf(" and %d more ranges", len(missing)-10)
		}
	}
	return s
}

// CountIn returns how many distinct numbers in first…last were seen.
func (t *SeqTracker) CountIn(first, last uint64) uint64 {
	var n uint64
	for s := first; s <= last; s++ {
		if s%64 == 0 && s+63 <= last {
			if w := s / 64; w < uint64(len(t.bits)) {
				n += uint64(bits.OnesCount64(t.bits[w]))
			}
			s += 63
			continue
		}
		if t.has(s) {
			n++
		}
		if s == ^uint64(0) {
			break
		}
	}
	return n
}
