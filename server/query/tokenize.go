package query

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sluicelog/sluice/server/index"
)

// Tokenizer splits text into index tokens the way a logstore's index says
// (token characters, case sensitivity). The store uses it to build the
// full-text token column; the compiler uses the same rules for terms, so
// both sides agree by construction.
//
// ' ' is always a delimiter, even if the index's token set leaves it out:
// the token text format (see AppendValue) uses it as the separator.
type Tokenizer struct {
	ascii         [128]bool
	other         map[rune]bool
	caseSensitive bool
}

// NewTokenizer returns a tokenizer splitting on every character of every
// string in tokens (nil or empty = index.DefaultTokens()).
func NewTokenizer(tokens []string, caseSensitive bool) *Tokenizer {
	if len(tokens) == 0 {
		tokens = index.DefaultTokens()
	}
	t := &Tokenizer{caseSensitive: caseSensitive}
	t.ascii[' '] = true
	for _, s := range tokens {
		for _, r := range s {
			if r < 128 {
				t.ascii[r] = true
			} else {
				if t.other == nil {
					t.other = map[rune]bool{}
				}
				t.other[r] = true
			}
		}
	}
	return t
}

// LineTokenizer returns the tokenizer of idx's full-text index (defaults
// when idx or idx.Line is nil).
func LineTokenizer(idx *index.Config) *Tokenizer {
	if idx == nil || idx.Line == nil {
		return NewTokenizer(nil, false)
	}
	return NewTokenizer(idx.Line.Token, idx.Line.CaseSensitive)
}

// IsDelimiter reports whether r separates tokens.
func (t *Tokenizer) IsDelimiter(r rune) bool {
	if r >= 0 && r < 128 {
		return t.ascii[r]
	}
	return t.other[r]
}

// CaseSensitive reports whether matching keeps case.
func (t *Tokenizer) CaseSensitive() bool { return t.caseSensitive }

// Tokens returns the tokens of s (lowercased unless case sensitive).
func (t *Tokenizer) Tokens(s string) []string {
	var out []string
	start := -1
	for i, r := range s {
		if t.IsDelimiter(r) {
			if start >= 0 {
				out = append(out, t.fold(s[start:i]))
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, t.fold(s[start:]))
	}
	return out
}

func (t *Tokenizer) fold(s string) string {
	if t.caseSensitive {
		return s
	}
	return strings.ToLower(s)
}

// AppendValue appends the token text of one value to dst: " tok1 tok2 "
// (each token preceded by ' ', and a final ' '); nothing when value has
// no tokens. A log's token text is the concatenation over its values,
// so values are separated by two spaces and a phrase never matches across
// two values. The result is valid UTF-8: each run of invalid bytes
// becomes one U+FFFD, as strings.ToValidUTF8 does (the store keeps the
// text in a VARCHAR column).
func (t *Tokenizer) AppendValue(dst []byte, value string) []byte {
	// ASCII fast path (the store calls this for every value it stores),
	// written by index: a token byte uses one input byte, so room for the
	// rest of the input plus a leading and a trailing space, checked at
	// each token start, is always enough.
	n := len(dst)
	buf := dst[:cap(dst)]
	inTok, wrote := false, false
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c >= utf8.RuneSelf {
			return t.appendSlow(buf[:n], value[i:], inTok, wrote)
		}
		if t.ascii[c] {
			inTok = false
			continue
		}
		if !inTok {
			if need := len(value) - i + 2; len(buf)-n < need {
				buf = slices.Grow(buf[:n], need)
				buf = buf[:cap(buf)]
			}
			buf[n] = ' '
			n++
			inTok, wrote = true, true
		}
		if !t.caseSensitive && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	if wrote {
		buf[n] = ' '
		n++
	}
	return buf[:n]
}

// appendSlow is AppendValue from the first non-ASCII byte on.
func (t *Tokenizer) appendSlow(dst []byte, value string, inTok, wrote bool) []byte {
	invalid := false // the previous byte was invalid UTF-8
	for i := 0; i < len(value); {
		r, size := utf8.DecodeRuneInString(value[i:])
		bad := r == utf8.RuneError && size == 1
		if bad && invalid {
			i++ // one U+FFFD stands for the whole run
			continue
		}
		invalid = bad
		if t.IsDelimiter(r) {
			inTok = false
			i += size
			continue
		}
		if !inTok {
			dst = append(dst, ' ')
			inTok, wrote = true, true
		}
		switch {
		case bad:
			dst = utf8.AppendRune(dst, utf8.RuneError)
		case t.caseSensitive:
			dst = append(dst, value[i:i+size]...)
		case r < utf8.RuneSelf:
			c := byte(r)
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		default:
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
		}
		i += size
	}
	if wrote {
		dst = append(dst, ' ')
	}
	return dst
}

// patTok is one token of a search term: literal text with wildcards.
type patTok struct {
	text string
	wild []int // offsets of '*'/'?' wildcards in text
}

// splitPattern tokenizes a term value, keeping its wildcards (which are
// never delimiters, even when '?' is in the token set).
func (t *Tokenizer) splitPattern(value string, wild []int) []patTok {
	isWild := make(map[int]bool, len(wild))
	for _, w := range wild {
		isWild[w] = true
	}
	var out []patTok
	var cur strings.Builder
	var cw []int
	in := false
	flush := func() {
		if in {
			out = append(out, patTok{text: cur.String(), wild: cw})
			cur.Reset()
			cw = nil
			in = false
		}
	}
	for i, r := range value {
		if isWild[i] {
			cw = append(cw, cur.Len())
			cur.WriteRune(r)
			in = true
			continue
		}
		if t.IsDelimiter(r) {
			flush()
			continue
		}
		if !t.caseSensitive {
			r = unicode.ToLower(r)
		}
		cur.WriteRune(r)
		in = true
	}
	flush()
	return out
}
