package logconfig

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
)

// Warnings reports keys this package does not know (they are kept and
// returned, never rejected, so newer clients keep working) with the known
// key they most likely misspell, e.g.
//
//	config "nginx": inputDetail.logpth: unknown key, kept but not used: did you mean "logPath"?
//
// The server can return these beside a successful CreateConfig and the
// console can show them inline.
func (c *Config) Warnings() []*ValidationError {
	var out []*ValidationError
	add := func(prefix string, extra map[string]json.RawMessage, known reflect.Type) {
		names := jsonNames(known)
		keys := make([]string, 0, len(extra))
		for k := range extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			msg := "unknown key, kept but not used"
			if s := closest(k, names); s != "" {
				msg += ": did you mean \"" + s + "\"?"
			} else {
				msg += ": remove it if it is a mistake"
			}
			out = append(out, &ValidationError{Config: c.ConfigName, Path: prefix + k, Message: msg})
		}
	}
	add("", c.Extra, reflect.TypeFor[configFields]())
	add("inputDetail.", c.InputDetail.Extra, reflect.TypeFor[inputDetailFields]())
	add("outputDetail.", c.OutputDetail.Extra, reflect.TypeFor[outputDetailFields]())
	if a := c.InputDetail.Advanced; a != nil {
		add("inputDetail.advanced.", a.Extra, reflect.TypeFor[advancedFields]())
	}
	return out
}

// closest returns the name within edit distance 2 of key, or that key
// abbreviates (logstore → logstoreName), ignoring case and '_'; else "".
func closest(key string, names []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "") }
	k := norm(key)
	best, bestD := "", 3
	for _, n := range names {
		if len(k) >= 4 && strings.HasPrefix(norm(n), k) && bestD > 1 {
			best, bestD = n, 1
		}
		if d := editDistance(k, norm(n)); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
