package duckdb

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/sluicelog/sluice/protocol"
)

// The __contents__ column is a BLOB holding the log's keys and values in
// their original order and bytes: uvarint(count), then per pair
// uvarint(len(key)) key uvarint(len(value)) value. It is decoded only for
// rows that are returned, so a compact binary form beats JSON (no escaping,
// no UTF-8 validation, values are returned byte for byte as written).

func appendContents(dst []byte, contents []protocol.LogContent) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(contents)))
	for i := range contents {
		dst = binary.AppendUvarint(dst, uint64(len(contents[i].Key)))
		dst = append(dst, contents[i].Key...)
		dst = binary.AppendUvarint(dst, uint64(len(contents[i].Value)))
		dst = append(dst, contents[i].Value...)
	}
	return dst
}

var errCorruptContents = errors.New("corrupt __contents__ value")

// decodeContents calls fn for every key/value of an encoded blob. The
// strings alias b.
func decodeContents(b []byte, fn func(k, v string)) error {
	n, l := binary.Uvarint(b)
	if l <= 0 {
		return errCorruptContents
	}
	b = b[l:]
	next := func() (string, bool) {
		m, l := binary.Uvarint(b)
		if l <= 0 || uint64(len(b)-l) < m {
			return "", false
		}
		s := b[l : l+int(m)]
		b = b[l+int(m):]
		return string(s), true
	}
	for range n {
		k, ok := next()
		if !ok {
			return errCorruptContents
		}
		v, ok := next()
		if !ok {
			return errCorruptContents
		}
		fn(k, v)
	}
	return nil
}

// encodeTags renders group tags as a JSON object (usable from SQL with
// json_extract_string(__tags__, '$."k"')). Invalid UTF-8 is replaced: tags
// are agent metadata, not user payload.
func encodeTags(tags []protocol.LogTag) string {
	if len(tags) == 0 {
		return "{}"
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, t := range tags {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, t.Key)
		b.WriteByte(':')
		writeJSONString(&b, t.Value)
	}
	b.WriteByte('}')
	return b.String()
}

func writeJSONString(b *strings.Builder, s string) {
	// Tags are nearly always plain ASCII: written as they are, without
	// encoding/json's reflection and allocation (once per group).
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return
	}
	s = validUTF8(s)
	q, _ := json.Marshal(s) // cannot fail for a string
	b.Write(q)
}

// decodeTags parses an __tags__ value, keeping key order.
func decodeTags(s string) ([]protocol.LogTag, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var tags []protocol.LogTag
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		vt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := kt.(string)
		v, _ := vt.(string)
		tags = append(tags, protocol.LogTag{Key: k, Value: v})
	}
	return tags, nil
}

// validUTF8 returns s, or a copy with invalid bytes replaced: DuckDB
// VARCHAR values must be valid UTF-8.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
