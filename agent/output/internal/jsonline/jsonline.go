// Package jsonline renders pipeline events as JSON lines, the format of the
// stdout and file outputs: one object per event,
//
//	{"__time__":1700000000,"__topic__":"t","__source__":"10.0.0.1","__tag__:k":"v","field":"value"}
//
// __time__ is the event's unix seconds (a number; __time_ns__ carries the
// nanoseconds when non-zero), __topic__ and __source__ are always present,
// then the batch tags as "__tag__:<key>" and the event fields in order. A
// field whose key the line already has (a JSON log with its own "__time__")
// is written as "__field__:<key>": each key appears once, and nothing is
// lost. All
// other values are strings, as Log Service returns them. Invalid UTF-8 is
// replaced by U+FFFD, as encoding/json does.
//
// Written by hand rather than with encoding/json because events are not Go
// structs with fixed keys and a map would lose the field order; appending to
// a reused buffer allocates nothing per event.
package jsonline

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicelog/sluice/agent/pipeline"
)

// AppendBatch appends one line per event of b to dst. source replaces an
// empty b.Source (outputs fill in the machine address).
func AppendBatch(dst []byte, b *pipeline.Batch, source string) []byte {
	if b.Source != "" {
		source = b.Source
	}
	for i := range b.Events {
		dst = AppendEvent(dst, &b.Events[i], b.Topic, source, b.Tags)
	}
	return dst
}

// AppendEvent appends the JSON line (with its newline) of one event.
func AppendEvent(dst []byte, e *pipeline.Event, topic, source string, tags []pipeline.Field) []byte {
	dst = append(dst, `{"__time__":`...)
	dst = strconv.AppendUint(dst, uint64(e.Time), 10)
	if e.TimeNs != 0 {
		dst = append(dst, `,"__time_ns__":`...)
		dst = strconv.AppendUint(dst, uint64(e.TimeNs), 10)
	}
	dst = append(dst, `,"__topic__":`...)
	dst = AppendString(dst, topic)
	dst = append(dst, `,"__source__":`...)
	dst = AppendString(dst, source)
	for _, t := range tags {
		dst = append(dst, `,"__tag__:`...)
		dst = appendStringBody(dst, t.Key)
		dst = append(dst, `":`...)
		dst = AppendString(dst, t.Value)
	}
	for _, f := range e.Fields {
		// The first test, inline, spares most fields a call.
		if len(f.Key) > 1 && f.Key[0] == '_' && f.Key[1] == '_' && isLineKey(f.Key, tags) {
			dst = append(dst, `,"`+FieldPrefix...)
		} else {
			dst = append(dst, `,"`...)
		}
		dst = appendStringBody(dst, f.Key)
		dst = append(dst, `":`...)
		dst = AppendString(dst, f.Value)
	}
	return append(dst, "}\n"...)
}

// FieldPrefix is put before the key of an event field that would repeat
// one of the line's own keys, e.g. a JSON log's own "__time__".
const FieldPrefix = "__field__:"

// isLineKey reports whether a field named k would repeat a key the line
// already has (or one FieldPrefix makes).
func isLineKey(k string, tags []pipeline.Field) bool {
	switch k {
	case "__time__", "__time_ns__", "__topic__", "__source__":
		return true
	}
	if strings.HasPrefix(k, FieldPrefix) {
		return true
	}
	if tk, ok := strings.CutPrefix(k, "__tag__:"); ok {
		for _, t := range tags {
			if t.Key == tk {
				return true
			}
		}
	}
	return false
}

// AppendString appends s as a JSON string.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendStringBody(dst, s)
	return append(dst, '"')
}

const hex = "0123456789abcdef"

func appendStringBody(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 break JavaScript parsers; escape as encoding/json.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}
