package multiline

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/agent/regexp/anchored"
)

// model is upstream's algorithm (ProcessorSplitMultilineLogStringNative
// over one whole buffer, single_line treatment) written as directly as
// possible on regexp, for differential fuzzing.
func model(cfg Config, lines []string) []string {
	comp := func(p string) *regexp.Regexp {
		if isUnset(p) {
			return nil
		}
		return regexp.MustCompile(anchored.Wrap(p, lineOptions))
	}
	start, cont, end := comp(cfg.BeginRegex), comp(cfg.ContinueRegex), comp(cfg.EndRegex)
	if start == nil && end == nil {
		return lines
	}
	m := func(re *regexp.Regexp, s string) bool { return re.MatchString(s) }
	var out []string
	var acc []string
	partial := start == nil && cont == nil
	for _, line := range lines {
		if !partial {
			re := start
			if re == nil {
				re = cont
			}
			switch {
			case m(re, line):
				acc = []string{line}
				partial = true
			case end != nil && start == nil && cont != nil && m(end, line):
				out = append(out, line)
			default:
				out = append(out, line)
			}
			continue
		}
		if cont != nil && m(cont, line) {
			acc = append(acc, line)
			continue
		}
		if end != nil {
			acc = append(acc, line)
			if cont != nil {
				if m(end, line) {
					out = append(out, strings.Join(acc, "\n"))
				} else {
					out = append(out, acc...)
				}
				acc = nil
				partial = false
			} else if m(end, line) {
				out = append(out, strings.Join(acc, "\n"))
				acc = nil
				partial = start == nil
			}
			continue
		}
		if cont == nil {
			if m(start, line) {
				out = append(out, strings.Join(acc, "\n"))
				acc = []string{line}
			} else {
				acc = append(acc, line)
			}
			continue
		}
		out = append(out, strings.Join(acc, "\n"))
		acc = nil
		if m(start, line) {
			acc = []string{line}
		} else {
			out = append(out, line)
			partial = false
		}
	}
	if len(acc) > 0 {
		if end == nil {
			out = append(out, strings.Join(acc, "\n"))
		} else {
			out = append(out, acc...)
		}
	}
	return out
}

var fuzzPatterns = []string{"", ".*", `B.*`, `C.*`, `E.*`, `\d+.*`, `\s.*`, `.*;`, `[BC].*`, `x`}

func FuzzSplitter(f *testing.F) {
	f.Add(byte(2), byte(0), byte(0), uint16(0), []byte(java))
	f.Add(byte(2), byte(3), byte(4), uint16(0), []byte("B\nC\nE\nX\nB\nE\n"))
	f.Add(byte(0), byte(3), byte(4), uint16(0), []byte("C\nC\nE\nE\nX\nC"))
	f.Add(byte(0), byte(0), byte(7), uint16(5), []byte("a\nb;\nccccccccccc;\nd"))
	f.Add(byte(5), byte(6), byte(0), uint16(3), []byte("1 é€\n x\n\xff\n2"))
	f.Fuzz(func(t *testing.T, b, c, e byte, max uint16, data []byte) {
		cfg := Config{
			BeginRegex:    fuzzPatterns[int(b)%len(fuzzPatterns)],
			ContinueRegex: fuzzPatterns[int(c)%len(fuzzPatterns)],
			EndRegex:      fuzzPatterns[int(e)%len(fuzzPatterns)],
			MaxEventBytes: int(max % 64),
		}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		var got []string
		var ends []int64
		emit := func(ev []byte, end int64) {
			got = append(got, string(ev))
			ends = append(ends, end)
		}
		var off int64
		for _, l := range lines {
			off += int64(len(l)) + 1
			s.Push([]byte(l), off, emit)
		}
		s.Flush(emit)
		if s.Pending() {
			t.Fatal("pending after Flush")
		}
		for i := range ends {
			if ends[i] > off || (i > 0 && ends[i] < ends[i-1]) {
				t.Fatalf("offsets %v not monotonic within [0,%d]", ends, off)
			}
		}
		if cfg.MaxEventBytes == 0 {
			want := model(cfg, lines)
			if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
				t.Fatalf("cfg %+v\ninput %q\ngot  %q\nwant %q", cfg, data, got, want)
			}
			if len(got) > 0 && ends[len(ends)-1] != off {
				t.Fatalf("last event ends at %d, input at %d", ends[len(ends)-1], off)
			}
			return
		}
		// With cutting, no byte other than line breaks is lost or reordered
		// and no event is longer than the limit.
		var all []byte
		for _, ev := range got {
			if len(ev) > cfg.MaxEventBytes {
				t.Fatalf("event of %d bytes > max %d", len(ev), cfg.MaxEventBytes)
			}
			all = append(all, ev...)
		}
		if !bytes.Equal(bytes.ReplaceAll(all, []byte("\n"), nil), bytes.ReplaceAll(data, []byte("\n"), nil)) {
			t.Fatalf("bytes changed: %q -> %q", data, got)
		}
	})
}
