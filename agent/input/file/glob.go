package file

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// glob matches paths against a Logtail blacklist pattern: '*' and '?' stay
// within one path component, '**' crosses '/', '[...]' is a character class
// ('[!...]' negates). path/filepath.Match has no '**', hence the translation
// to a regular expression.
type glob struct {
	re *regexp.Regexp
}

func newGlob(pattern string) (*glob, error) {
	if pattern == "" {
		return nil, fmt.Errorf("empty pattern")
	}
	var sb strings.Builder
	sb.WriteString(`^`)
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '*':
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				sb.WriteString(`.*`)
				i++
			} else {
				sb.WriteString(`[^/]*`)
			}
		case '?':
			sb.WriteString(`[^/]`)
		case '[':
			j := strings.IndexByte(pattern[i+1:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unclosed '[' at offset %d: close the character class or escape it as [[]", i)
			}
			class := pattern[i+1 : i+1+j]
			if j == 0 {
				return nil, fmt.Errorf("empty character class at offset %d", i)
			}
			if class[0] == '!' {
				class = "^" + class[1:]
			}
			sb.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += j + 1
		case '\\':
			if i+1 < len(pattern) {
				i++
				sb.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
			} else {
				sb.WriteString(`\\`)
			}
		default:
			sb.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		}
	}
	sb.WriteString(`$`)
	re, err := regexp.Compile(sb.String())
	if err != nil {
		return nil, fmt.Errorf("invalid pattern: %w", err)
	}
	return &glob{re: re}, nil
}

func (g *glob) match(s string) bool { return g.re.MatchString(s) }

type globList []*glob

func newGlobList(patterns []string) (globList, error) {
	out := make(globList, 0, len(patterns))
	for _, p := range patterns {
		g, err := newGlob(filepath.Clean(p))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", p, err)
		}
		out = append(out, g)
	}
	return out, nil
}

func (l globList) match(s string) bool {
	for _, g := range l {
		if g.match(s) {
			return true
		}
	}
	return false
}

// pathMatcher expands a logPath whose components may contain glob wildcards
// (/var/log/*/app) into the directories that exist now. It is re-expanded
// on every discovery pass, so directories created later are picked up.
type pathMatcher struct {
	root  string   // longest wildcard-free prefix
	parts []string // remaining components; some contain wildcards
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

func newPathMatcher(logPath string) (*pathMatcher, error) {
	clean := filepath.Clean(logPath)
	if !filepath.IsAbs(clean) {
		return nil, fmt.Errorf("not an absolute path")
	}
	comps := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	m := &pathMatcher{root: "/"}
	i := 0
	for ; i < len(comps) && comps[i] != "" && !hasMeta(comps[i]); i++ {
		m.root = filepath.Join(m.root, comps[i])
	}
	for ; i < len(comps); i++ {
		if _, err := filepath.Match(comps[i], ""); err != nil {
			return nil, fmt.Errorf("component %q is not a valid glob: %w", comps[i], err)
		}
		m.parts = append(m.parts, comps[i])
	}
	return m, nil
}

// expand appends the existing directories matching the pattern to dst.
func (m *pathMatcher) expand(dst []string) []string {
	if len(m.parts) == 0 {
		return append(dst, m.root)
	}
	return m.walk(dst, m.root, 0)
}

func (m *pathMatcher) walk(dst []string, dir string, i int) []string {
	if i == len(m.parts) {
		return append(dst, dir)
	}
	part := m.parts[i]
	if !hasMeta(part) {
		return m.walk(dst, filepath.Join(dir, part), i+1)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return dst
	}
	for _, e := range entries {
		if ok, _ := filepath.Match(part, e.Name()); !ok {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if !e.IsDir() {
			if e.Type()&os.ModeSymlink == 0 {
				continue
			}
			if st, err := os.Stat(p); err != nil || !st.IsDir() {
				continue
			}
		}
		dst = m.walk(dst, p, i+1)
	}
	return dst
}
