package parse

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/agent/pipeline"
)

// surrogateEscape matches a \u escape of a UTF-16 surrogate, which
// encoding/json accepts alone and validJSON only in high-low pairs.
var surrogateEscape = regexp.MustCompile(`\\u[dD][89a-fA-F]`)

// FuzzValidJSON checks validJSON against encoding/json.Valid: never more
// lenient, and stricter only where surrogate escapes or nesting deeper than
// maxJSONDepth are involved; and json_log against validJSON.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":"x","n":1.50,"b":true,"z":null,"o":{"k":[1,"two",{"x":null}]}}`,
		`{"s":"\ud83d\ude00\u00e9\n\"\\\/"}`, `{"s":"\ud800"}`, `{"s":"\x41"}`, `{"n":01}`, `{"n":NaN}`,
		"{\"s\":\"a\tb\"}", `[-0.5e+10, 0, 1E2]`, `"plain"`, ` {"k" : "v"} `, `{"a":[1,]}`, `{"a":1.}`,
		`{"k":"0123456789abcdef0123456789abcdef"}`, `{"n":1-2}`, `{"o":{"n":[nan]}}`, `{"n":-Inf}`, `{"n":+1}`, `{"n":.5}`,
		`{"o":{"a":"x","b":[true,false,null,-1.5e3]}}`, "{\"a\":\n1}", `{"a":"\u12`, `tru`, `nul`, `-`, `1e`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, std := validJSON(s), json.Valid([]byte(s))
		if got && !std {
			t.Fatalf("validJSON accepts %q, encoding/json refuses it", s)
		}
		if !got && std && !surrogateEscape.MatchString(s) && depth(s) < maxJSONDepth {
			t.Fatalf("validJSON refuses %q, encoding/json accepts it", s)
		}
		// json_log checks only part of some events (see jsonParser): it
		// must still take exactly the valid objects.
		if depth(s) >= maxJSONDepth-1 {
			return
		}
		var w worker
		out := pipeline.NewBatch()
		out.BeginEvent(0, 0)
		parsed := jsonParser{}.parse(&w, out, s) == ok
		out.AbortEvent()
		if want := got && strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "{"); parsed != want {
			t.Fatalf("json_log on %q: parsed %v, want %v", s, parsed, want)
		}
	})
}

// depth is the deepest bracket nesting of s, strings included (an upper bound).
func depth(s string) int {
	d, most := 0, 0
	for _, c := range []byte(s) {
		switch c {
		case '[', '{':
			d++
			most = max(most, d)
		case ']', '}':
			d--
		}
	}
	return most
}

func BenchmarkValidJSON(b *testing.B) {
	lines := make([]string, 256)
	var size int64
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"time":"2024-10-10T13:55:%02d+08:00","level":"info","msg":"request served","path":"/api/v1/orders/%d","status":%d,"latency_ms":%d.%d,"user":{"id":%d,"tags":["a","b"]}}`,
			i%60, i, 200+i%3*100, i%100, i%10, i)
		size += int64(len(lines[i]))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			if !validJSON(l) {
				b.Fatal(l)
			}
		}
	}
}
