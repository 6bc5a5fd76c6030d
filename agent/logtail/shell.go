package logtail

import (
	"errors"
	"fmt"
	"strings"
)

// The agent image has no shell, yet Logtail manifests start the agent with
// `sh -c "/usr/local/ilogtail/run_logtail.sh 10"`. The sh applet runs one
// simple command: words with '…' and "…" quoting, backslash escapes and
// $NAME / ${NAME} expansion, optional NAME=value assignments and an exec
// prefix. Lists, pipes, redirections and substitutions are refused with a
// message, never half-run.

// shellCommand is one parsed simple command.
type shellCommand struct {
	assign []string // NAME=value, in order
	argv   []string
}

// errShellSyntax reports a construct the sh applet does not run.
var errShellSyntax = errors.New("sluice-agent's sh runs one simple command")

// parseShell parses script, expanding variables with getenv and the
// positional parameters with params ($0, $1 …).
func parseShell(script string, getenv func(string) string, params []string) (*shellCommand, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
		runes  = []rune(script)
		unsupp = func(what string) error {
			return fmt.Errorf("%w: %s is not supported in %q", errShellSyntax, what, script)
		}
		lookupV = func(name string) string {
			if n := len(name); n == 1 && name[0] >= '0' && name[0] <= '9' {
				if i := int(name[0] - '0'); i < len(params) {
					return params[i]
				}
				return ""
			}
			return getenv(name)
		}
	)
	// expand reads a parameter after '$' at runes[i] and returns its value
	// and the index after it.
	expand := func(i int) (string, int, error) {
		if i >= len(runes) {
			return "$", i, nil
		}
		switch r := runes[i]; {
		case r == '{':
			end := indexRune(runes[i+1:], '}')
			if end < 0 {
				return "", 0, fmt.Errorf("%w: unterminated ${ in %q", errShellSyntax, script)
			}
			name := string(runes[i+1 : i+1+end])
			if !validName(name) && !(len(name) == 1 && name[0] >= '0' && name[0] <= '9') {
				return "", 0, unsupp("${" + name + "}")
			}
			return lookupV(name), i + 2 + end, nil
		case r == '(':
			return "", 0, unsupp("command substitution $(…)")
		case r >= '0' && r <= '9':
			return lookupV(string(r)), i + 1, nil
		case r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z':
			j := i
			for j < len(runes) && (runes[j] == '_' || runes[j] >= 'A' && runes[j] <= 'Z' || runes[j] >= 'a' && runes[j] <= 'z' || runes[j] >= '0' && runes[j] <= '9') {
				j++
			}
			return lookupV(string(runes[i:j])), j, nil
		case r == '@' || r == '*' || r == '#' || r == '?' || r == '$' || r == '!' || r == '-':
			return "", 0, unsupp("special parameter $" + string(r))
		}
		return "$", i, nil
	}
	afterNewline := false // a newline ended a command that has words
	for i := 0; i < len(runes); {
		r := runes[i]
		if !inWord && afterNewline && !strings.ContainsRune(" \t\n#", r) {
			return nil, unsupp("a second command on a new line")
		}
		switch {
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			if r == '\n' && len(words) > 0 {
				afterNewline = true
			}
			i++
		case r == '#' && !inWord:
			for i < len(runes) && runes[i] != '\n' {
				i++
			}
		case r == '\'':
			end := indexRune(runes[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%w: unterminated ' in %q", errShellSyntax, script)
			}
			cur.WriteString(string(runes[i+1 : i+1+end]))
			inWord = true
			i += end + 2
		case r == '"':
			inWord = true
			i++
			for {
				if i >= len(runes) {
					return nil, fmt.Errorf("%w: unterminated \" in %q", errShellSyntax, script)
				}
				c := runes[i]
				if c == '"' {
					i++
					break
				}
				switch c {
				case '\\':
					if i+1 < len(runes) && strings.ContainsRune("$`\"\\\n", runes[i+1]) {
						if runes[i+1] != '\n' {
							cur.WriteRune(runes[i+1])
						}
						i += 2
						continue
					}
					cur.WriteRune(c)
					i++
				case '$':
					v, next, err := expand(i + 1)
					if err != nil {
						return nil, err
					}
					cur.WriteString(v)
					i = next
				case '`':
					return nil, unsupp("command substitution `…`")
				default:
					cur.WriteRune(c)
					i++
				}
			}
		case r == '\\':
			if i+1 < len(runes) {
				if runes[i+1] != '\n' {
					cur.WriteRune(runes[i+1])
					inWord = true
				}
				i += 2
				continue
			}
			i++
		case r == '$':
			v, next, err := expand(i + 1)
			if err != nil {
				return nil, err
			}
			// Unquoted expansions are not split into several words: the
			// commands Logtail manifests run take single-word values.
			cur.WriteString(v)
			inWord = true
			i = next
		case strings.ContainsRune(";&|<>()`", r):
			what := map[rune]string{';': "a command list (;)", '&': "& or &&", '|': "a pipe or ||", '<': "redirection", '>': "redirection", '(': "a subshell", ')': "a subshell", '`': "command substitution `…`"}[r]
			return nil, unsupp(what)
		default:
			cur.WriteRune(r)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	c := &shellCommand{}
	for len(words) > 0 {
		if name, _, ok := strings.Cut(words[0], "="); ok && validName(name) {
			c.assign = append(c.assign, words[0])
			words = words[1:]
			continue
		}
		break
	}
	if len(words) > 0 && words[0] == "exec" {
		words = words[1:]
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%w: %q names no command", errShellSyntax, script)
	}
	c.argv = words
	return c, nil
}

func validName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if r != '_' && (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// indexRune is strings.IndexRune for a rune slice (the index counts runes).
func indexRune(rs []rune, r rune) int {
	for i, c := range rs {
		if c == r {
			return i
		}
	}
	return -1
}
