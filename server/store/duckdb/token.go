package duckdb

import (
	"unicode"
	"unicode/utf8"

	"github.com/sluicelog/sluice/server/index"
)

// tokenizer splits text on an index's token set, the way the Log Service
// tokenises before matching (sls-api.md §5). The full-text column stores
// the tokens of a log joined by single spaces with a space at both ends
// (" get api v1 orders 200 "), so a term matches with contains(col, ' t ')
// and a phrase with contains(col, ' a b '). Space therefore always
// separates tokens, even when an index's token set leaves it out.
type tokenizer struct {
	ascii         [utf8.RuneSelf]bool
	other         map[rune]bool
	caseSensitive bool
}

func newTokenizer(tokens []string, caseSensitive bool) *tokenizer {
	t := &tokenizer{caseSensitive: caseSensitive}
	t.ascii[' '] = true
	for _, tok := range tokens {
		for _, r := range tok {
			if r < utf8.RuneSelf {
				t.ascii[r] = true
				continue
			}
			if t.other == nil {
				t.other = map[rune]bool{}
			}
			t.other[r] = true
		}
	}
	return t
}

func lineTokenizer(idx *index.Config) *tokenizer {
	switch {
	case idx == nil:
		return newTokenizer(index.DefaultTokens(), false)
	case idx.Line == nil:
		return nil
	case len(idx.Line.Token) == 0:
		return newTokenizer(index.DefaultTokens(), idx.Line.CaseSensitive)
	}
	return newTokenizer(idx.Line.Token, idx.Line.CaseSensitive)
}

// appendTokens appends each token of s followed by a space. dst should
// already end in a space. Invalid UTF-8 bytes act as delimiters.
func (t *tokenizer) appendTokens(dst []byte, s string) []byte {
	inTok := false
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			if t.ascii[c] {
				if inTok {
					dst = append(dst, ' ')
					inTok = false
				}
				continue
			}
			if !t.caseSensitive && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			inTok = true
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		if r == utf8.RuneError && n == 1 || t.other[r] {
			if inTok {
				dst = append(dst, ' ')
				inTok = false
			}
			continue
		}
		if !t.caseSensitive {
			r = unicode.ToLower(r)
		}
		dst = utf8.AppendRune(dst, r)
		inTok = true
	}
	if inTok {
		dst = append(dst, ' ')
	}
	return dst
}

// tokens returns the tokens of s (for compiling search terms).
func (t *tokenizer) tokens(s string) []string {
	b := t.appendTokens(nil, s)
	var out []string
	start := 0
	for i, c := range b {
		if c == ' ' {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}
