package parse

import (
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/agent/pipeline"
)

// delimiterParser is delimiter_log, as Logtail's ProcessorParseDelimiterNative:
// leading spaces and trailing spaces/CRs of the line are ignored and a blank
// line is left as it is; columns are split at every separator; with a
// single-byte separator (other than the quote) a column may be quoted, a
// doubled quote inside standing for one quote (CSV style); a quote inside an
// unquoted column is literal. Columns beyond the keys are named after their
// index, __column<i>__ (i counted from 0 over all columns); without
// autoExtend the text after the last keyed column, separator included, is
// kept whole as __column<len(keys)>__.
type delimiterParser struct {
	sep       string
	quote     byte
	useQuote  bool
	keys      []string
	extend    bool
	acceptFew bool
	extraKeys []string // __column<len(keys)>__ … precomputed
}

const precomputedExtraKeys = 64

func newDelimiterParser(cfg *Config) *delimiterParser {
	p := &delimiterParser{
		sep:       separator(cfg.Separator),
		quote:     cfg.quote(),
		keys:      append([]string(nil), cfg.Keys...),
		extend:    cfg.AutoExtend,
		acceptFew: cfg.AcceptNoEnoughKeys,
	}
	p.useQuote = len(p.sep) == 1
	for i := 0; i < precomputedExtraKeys; i++ {
		p.extraKeys = append(p.extraKeys, "__column"+strconv.Itoa(len(p.keys)+i)+"__")
	}
	return p
}

func (p *delimiterParser) parse(w *worker, out *pipeline.Batch, raw string) reason {
	end := len(raw)
	for end > 0 && (raw[end-1] == ' ' || raw[end-1] == '\r') {
		end--
	}
	beg := 0
	for beg < end && raw[beg] == ' ' {
		beg++
	}
	if beg >= end {
		return unchanged
	}
	line := raw[beg:end]
	cols, rest, r := p.split(w, out, line)
	w.cols = cols
	if r != ok {
		return r
	}
	if len(cols) < len(p.keys) && !p.acceptFew {
		return reasonColumns
	}
	for i, c := range cols {
		switch {
		case i < len(p.keys):
			out.AddFieldString(p.keys[i], c)
		case i-len(p.keys) < len(p.extraKeys):
			out.AddFieldString(p.extraKeys[i-len(p.keys)], c)
		default:
			w.buf = strconv.AppendInt(append(w.buf[:0], "__column"...), int64(i), 10)
			w.buf = append(w.buf, "__"...)
			out.AddFieldString(out.CopyBytes(w.buf), c)
		}
	}
	if rest >= 0 {
		out.AddFieldString(p.extraKeys[0], line[rest:])
	}
	return ok
}

// split returns the columns of raw and, when autoExtend is off and there
// is text beyond the keyed columns, the index of the separator where that
// text starts (else -1).
func (p *delimiterParser) split(w *worker, out *pipeline.Batch, raw string) ([]string, int, reason) {
	cols := w.cols[:0]
	pos := 0
	for {
		var sepAt int
		if p.useQuote && pos < len(raw) && raw[pos] == p.quote {
			col, next, r := p.quoted(w, out, raw, pos)
			if r != ok {
				return cols, -1, r
			}
			cols = append(cols, col)
			if next == len(raw) {
				return cols, -1, ok
			}
			sepAt = next
		} else {
			var j int
			if len(p.sep) == 1 {
				j = strings.IndexByte(raw[pos:], p.sep[0])
			} else {
				j = strings.Index(raw[pos:], p.sep)
			}
			if j < 0 {
				return append(cols, raw[pos:]), -1, ok
			}
			cols = append(cols, raw[pos:pos+j])
			sepAt = pos + j
		}
		if !p.extend && len(cols) == len(p.keys) {
			return cols, sepAt, ok
		}
		pos = sepAt + len(p.sep)
	}
}

// quoted reads the quoted column starting at raw[pos] and returns its value
// and the index just after the closing quote, which must be the end or the
// separator.
func (p *delimiterParser) quoted(w *worker, out *pipeline.Batch, raw string, pos int) (string, int, reason) {
	start := pos + 1
	escaped := false
	i := start
	for {
		j := strings.IndexByte(raw[i:], p.quote)
		if j < 0 {
			return "", 0, reasonQuote
		}
		i += j
		if i+1 < len(raw) && raw[i+1] == p.quote {
			escaped = true
			i += 2
			continue
		}
		break
	}
	end := i + 1
	if end != len(raw) && raw[end] != p.sep[0] {
		return "", 0, reasonQuote
	}
	val := raw[start:i]
	if escaped {
		w.buf = w.buf[:0]
		for k := 0; k < len(val); k++ {
			w.buf = append(w.buf, val[k])
			if val[k] == p.quote {
				k++ // the doubled quote
			}
		}
		val = out.CopyBytes(w.buf)
	}
	return val, end, ok
}
