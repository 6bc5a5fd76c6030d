package parse

import (
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/agent/pipeline"
)

// delimiterParser is delimiter_log. Columns are split at every separator;
// with a single-byte separator a column may be quoted, a doubled quote inside
// standing for one quote (CSV style); a quote inside an unquoted column is
// literal.
type delimiterParser struct {
	sep       string
	quote     byte
	useQuote  bool
	keys      []string
	extend    bool
	acceptFew bool
	extraKeys []string // __column0__ … precomputed
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
		p.extraKeys = append(p.extraKeys, "__column"+strconv.Itoa(i)+"__")
	}
	return p
}

func (p *delimiterParser) parse(w *worker, out *pipeline.Batch, raw string) reason {
	cols, r := p.split(w, out, raw)
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
		case !p.extend:
			return ok
		case i-len(p.keys) < len(p.extraKeys):
			out.AddFieldString(p.extraKeys[i-len(p.keys)], c)
		default:
			w.buf = strconv.AppendInt(append(w.buf[:0], "__column"...), int64(i-len(p.keys)), 10)
			w.buf = append(w.buf, "__"...)
			out.AddFieldString(out.CopyBytes(w.buf), c)
		}
	}
	return ok
}

func (p *delimiterParser) split(w *worker, out *pipeline.Batch, raw string) ([]string, reason) {
	cols := w.cols[:0]
	pos := 0
	for {
		if p.useQuote && pos < len(raw) && raw[pos] == p.quote {
			col, next, r := p.quoted(w, out, raw, pos)
			if r != ok {
				return cols, r
			}
			cols = append(cols, col)
			if next == len(raw) {
				return cols, ok
			}
			pos = next + 1 // skip the separator
			continue
		}
		var j int
		if len(p.sep) == 1 {
			j = strings.IndexByte(raw[pos:], p.sep[0])
		} else {
			j = strings.Index(raw[pos:], p.sep)
		}
		if j < 0 {
			return append(cols, raw[pos:]), ok
		}
		cols = append(cols, raw[pos:pos+j])
		pos += j + len(p.sep)
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
