package parse

import "math/bits"

// validJSON reports whether s is one JSON text as RFC 8259 defines it, and
// as Logtail's rapidjson parses it by default: no NaN or Infinity, no
// leading zeros, only the escapes \" \\ \/ \b \f \n \r \t \uXXXX, no raw
// control characters in strings, \u escapes of UTF-16 surrogates only in
// high-low pairs, at most maxJSONDepth nested arrays and objects.
//
// fastjson, which builds the fields, is lenient about all of these (and
// fastjson.Validate about surrogates); this check runs before it on every
// json_log event. Written by hand because no library validates this
// strictly without allocating: strings, most of a log line, are skipped 8
// bytes at a time.
func validJSON(s string) bool {
	i, ok := validValue(s, skipWS(s, 0), 0)
	return ok && skipWS(s, i) == len(s)
}

// maxJSONDepth is fastjson's own nesting limit.
const maxJSONDepth = 300

func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// validValue checks the value at s[i:] and returns the index after it.
func validValue(s string, i, depth int) (int, bool) {
	if i >= len(s) {
		return i, false
	}
	switch s[i] {
	case '{':
		return validContainer(s, i+1, depth, '}')
	case '[':
		return validContainer(s, i+1, depth, ']')
	case '"':
		return validString(s, i+1)
	case 't':
		return validLiteral(s, i, "true")
	case 'f':
		return validLiteral(s, i, "false")
	case 'n':
		return validLiteral(s, i, "null")
	}
	return validNumber(s, i)
}

// validContainer checks the members of an object (end '}') or the
// elements of an array (end ']') from s[i:], just after the opening bracket.
func validContainer(s string, i, depth int, end byte) (int, bool) {
	if depth >= maxJSONDepth {
		return i, false
	}
	i = skipWS(s, i)
	if i < len(s) && s[i] == end {
		return i + 1, true
	}
	var ok bool
	for {
		if end == '}' {
			if i >= len(s) || s[i] != '"' {
				return i, false
			}
			if i, ok = validString(s, i+1); !ok {
				return i, false
			}
			i = skipWS(s, i)
			if i >= len(s) || s[i] != ':' {
				return i, false
			}
			i = skipWS(s, i+1)
		}
		if i, ok = validValue(s, i, depth+1); !ok {
			return i, false
		}
		i = skipWS(s, i)
		if i >= len(s) {
			return i, false
		}
		switch s[i] {
		case ',':
			i = skipWS(s, i+1)
		case end:
			return i + 1, true
		default:
			return i, false
		}
	}
}

func validLiteral(s string, i int, lit string) (int, bool) {
	if len(s)-i < len(lit) || s[i:i+len(lit)] != lit {
		return i, false
	}
	return i + len(lit), true
}

// validNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(s string, i int) (int, bool) {
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = digits(s, i+1)
	default:
		return i, false
	}
	if i < len(s) && s[i] == '.' {
		j := digits(s, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(s, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func digits(s string, i int) int {
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// validString checks the string whose body starts at s[i] and returns the
// index after its closing quote.
func validString(s string, i int) (int, bool) {
	for {
		// Skip 8 plain bytes at a time: a word's bytes are plain when none
		// is '"', '\\' or below 0x20 (each found with the has-zero-byte
		// trick; the lowest flagged byte is exact, higher ones may not be).
		for i+8 <= len(s) {
			w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
				uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
			q := w ^ (ones * '"')
			b := w ^ (ones * '\\')
			m := ((q - ones) &^ q) | ((b - ones) &^ b) | ((w - ones*0x20) &^ w)
			if m &= highs; m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(s) {
			return i, false
		}
		switch c := s[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c != '\\':
			i++
			continue
		}
		// An escape.
		if i+1 >= len(s) {
			return i, false
		}
		switch s[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
			continue
		case 'u':
		default:
			return i, false
		}
		u, ok := hex4(s, i+2)
		if !ok {
			return i, false
		}
		i += 6
		switch {
		case u < 0xd800 || u > 0xdfff:
		case u >= 0xdc00: // a low surrogate without its high one
			return i, false
		default: // a high surrogate: the next escape must be its low one
			if i+1 >= len(s) || s[i] != '\\' || s[i+1] != 'u' {
				return i, false
			}
			l, ok := hex4(s, i+2)
			if !ok || l < 0xdc00 || l > 0xdfff {
				return i, false
			}
			i += 6
		}
	}
}

// hex4 decodes the four hex digits at s[i:].
func hex4(s string, i int) (rune, bool) {
	if len(s)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// hasControl reports whether s holds a byte below 0x20, 8 bytes at a time.
func hasControl(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if (w-ones*0x20)&^w&highs != 0 {
			return true
		}
	}
	for ; i < len(s); i++ {
		if s[i] < 0x20 {
			return true
		}
	}
	return false
}

// validNumbersIn reports whether the numbers and literals in s, compact
// JSON text as fastjson writes it for a value parsed from text without a
// backslash or control character, are valid: NaN, 01 or 1. are not. The
// strings of such text hold no escaped quote, so each ends at the next '"'.
func validNumbersIn(s string) bool {
	for i := 0; i < len(s); {
		var ok bool
		switch s[i] {
		case '"': // mostly short: a loop beats IndexByte's call
			for i++; i < len(s) && s[i] != '"'; i++ {
			}
			i++
			continue
		case '{', '}', '[', ']', ',', ':':
			i++
			continue
		case 't':
			i, ok = validLiteral(s, i, "true")
		case 'f':
			i, ok = validLiteral(s, i, "false")
		case 'n':
			i, ok = validLiteral(s, i, "null")
		default:
			i, ok = validNumber(s, i)
		}
		if !ok || i < len(s) && s[i] != ',' && s[i] != ']' && s[i] != '}' {
			return false
		}
	}
	return true
}
