package parse

import (
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/agent/regexp/anchored"
)

// fuzzRun parses one event and returns its fields; every input must come
// out as exactly one event (DiscardUnmatch is off).
func fuzzRun(t *testing.T, cfg Config, raw string) []pipeline.Field {
	t.Helper()
	var got []pipeline.Field
	n := 0
	next := pipeline.ConsumerFunc(func(_ context.Context, b *pipeline.Batch) error {
		for _, e := range b.Events {
			n++
			got = append(got, e.Fields...)
		}
		return nil
	})
	s, err := NewStage(cfg, next, Settings{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	b := pipeline.NewBatch()
	b.BeginEvent(readTime, 0)
	b.AddField(DefaultSourceKey, []byte(raw))
	b.EndEvent()
	if err := s.Consume(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d events out for one in", n)
	}
	return got
}

func isRaw(fs []pipeline.Field, raw string) bool {
	return len(fs) == 1 && fs[0].Key == RawLogKey && fs[0].Value == raw
}

// fuzzRegexAgainstRegexp checks the parsed fields against Go's regexp.
func fuzzRegexAgainstRegexp(t *testing.T, cfg Config, expr string, keys []string, raw string) {
	got := fuzzRun(t, cfg, raw)
	loc := regexp.MustCompile(anchored.Wrap(expr, regexOptions)).FindStringSubmatchIndex(raw)
	if loc == nil {
		if !isRaw(got, raw) {
			t.Fatalf("regexp does not match %q, got %v", raw, got)
		}
		return
	}
	if len(got) != len(keys) {
		t.Fatalf("%q: got %v, want %d fields", raw, got, len(keys))
	}
	for i, k := range keys {
		want := ""
		if loc[2*i+2] >= 0 {
			want = raw[loc[2*i+2]:loc[2*i+3]]
		}
		if got[i].Key != k || got[i].Value != want {
			t.Fatalf("%q: field %d = %v, regexp says %s=%q", raw, i, got[i], k, want)
		}
	}
}

func FuzzRegex(f *testing.F) {
	f.Add(`(\S+) (\d+) (.*)`, "x 12 hello")
	f.Add(`\[([^\]]*)\] (\w+)\s+(.*)`, "[2024-01-01 00:00:00] INFO  started\nsecond line")
	f.Add(`(a|ab)(c|bcd)(d*)`, "abcd")
	f.Add(`([^,]*),([^,]*)`, "é,\xff")
	f.Fuzz(func(t *testing.T, expr, raw string) {
		re, err := anchored.Compile(expr, regexOptions)
		if err != nil || re.NumSubexp() == 0 || re.NumSubexp() > 20 {
			return
		}
		keys := make([]string, re.NumSubexp())
		for i := range keys {
			keys[i] = "k" + string(rune('a'+i))
		}
		fuzzRegexAgainstRegexp(t, Config{LogType: Regex, Regex: expr, Keys: keys}, expr, keys, raw)
	})
}

func FuzzNginx(f *testing.F) {
	for _, l := range nginxLines(3) {
		f.Add(l)
	}
	f.Add(`1.2.3.4 - - [x] "-" 400 - "-" "-"`)
	f.Add(`1.2.3.4 - - [x] "GET  / HTTP/1.1" 200 1 "" ""`)
	f.Fuzz(func(t *testing.T, raw string) {
		fuzzRegexAgainstRegexp(t, Config{LogType: Nginx}, NginxRegex, NginxKeys, raw)
	})
}

// loneSurrogate finds \uD800-\uDFFF escapes, which encoding/json turns
// into U+FFFD and fastjson keeps as written; neither is wrong.
var loneSurrogate = regexp.MustCompile(`(?i)\\ud[89a-f]`)

func FuzzJSON(f *testing.F) {
	f.Add(`{"a":"x","n":1.5e3,"o":{"k":[1,"two",null]},"e":"\u00e9\n"}`)
	f.Add(`{"a":`)
	f.Add(`[1]`)
	f.Add(`{"dup":1,"dup":2}`)
	f.Add(" {\"\\ud83d\\ude00\":true} ")
	f.Fuzz(func(t *testing.T, raw string) {
		got := fuzzRun(t, Config{LogType: JSON}, raw)
		// Compare with encoding/json on input both libraries must agree on:
		// valid UTF-8 JSON objects with distinct keys.
		if !utf8.ValidString(raw) || !json.Valid([]byte(raw)) || loneSurrogate.MatchString(raw) {
			return
		}
		var obj map[string]any
		if json.Unmarshal([]byte(raw), &obj) != nil {
			if !isRaw(got, raw) {
				t.Fatalf("%q is not an object but parsed to %v", raw, got)
			}
			return
		}
		if len(got) != len(obj) {
			return // duplicate keys: encoding/json keeps the last
		}
		for _, f := range got {
			want, present := obj[f.Key]
			if !present {
				t.Fatalf("%q: key %q not in %v", raw, f.Key, obj)
			}
			if want == nil {
				if f.Value != "" {
					t.Fatalf("%q: null %s=%q, want empty", raw, f.Key, f.Value)
				}
				continue
			}
			if s, isString := want.(string); isString {
				if f.Value != s {
					t.Fatalf("%q: %s=%q, want %q", raw, f.Key, f.Value, s)
				}
				continue
			}
			var v any
			if err := json.Unmarshal([]byte(f.Value), &v); err != nil || !reflect.DeepEqual(v, want) {
				t.Fatalf("%q: %s=%q is not %v (%v)", raw, f.Key, f.Value, want, err)
			}
		}
	})
}

func FuzzDelimiter(f *testing.F) {
	f.Add(",", `"a,b",c,"d""e"`, true, false)
	f.Add("||", "1||2||3||4", false, true)
	f.Add("\t", "\"x\ty\"\tz", true, true)
	f.Add(",", `"unterminated,x`, true, false)
	f.Fuzz(func(t *testing.T, sep, raw string, extend, acceptFew bool) {
		if sep == "" || sep == `"` || len(sep) > 4 {
			return
		}
		keys := []string{"a", "b", "c"}
		got := fuzzRun(t, Config{LogType: Delimiter, Separator: sep, Keys: keys, AutoExtend: extend, AcceptNoEnoughKeys: acceptFew}, raw)
		if strings.Contains(raw, `"`) {
			return // quoting: checked by the table tests; here only no panic and one event
		}
		line := strings.TrimRight(raw, " \r")
		line = strings.TrimLeft(line, " ")
		if line == "" {
			if len(got) != 1 || got[0].Key != DefaultSourceKey || got[0].Value != raw {
				t.Fatalf("blank line %q changed: %v", raw, got)
			}
			return
		}
		sep = separator(sep)
		cols := strings.Split(line, sep)
		if len(cols) < len(keys) && !acceptFew {
			if !isRaw(got, raw) {
				t.Fatalf("too few columns in %q but got %v", raw, got)
			}
			return
		}
		if !extend && len(cols) > len(keys) {
			// the rest of the line, from the separator on, as one field
			rest := strings.Join(cols[len(keys):], sep)
			cols = append(cols[:len(keys):len(keys)], sep+rest)
		}
		if len(got) != len(cols) {
			t.Fatalf("%q split by %q: got %v, want %q", raw, sep, got, cols)
		}
		for i, f := range got {
			if f.Value != cols[i] {
				t.Fatalf("%q split by %q: column %d = %q, want %q", raw, sep, i, f.Value, cols[i])
			}
		}
	})
}

func FuzzApsara(f *testing.F) {
	f.Add("[2024-01-02 03:04:05.123456]\t[INFO]\t[12345]\t[src/file.cpp:42]\tuser:bob\tmsg:a:b")
	f.Add("[1700000000]\t[WARNING]\tk:v")
	f.Add("[2024-01-02 03:04:05]")
	f.Add("[]\t[")
	f.Fuzz(func(t *testing.T, raw string) {
		got := fuzzRun(t, Config{LogType: Apsara}, raw)
		if isRaw(got, raw) || (raw == "" && len(got) == 1 && got[0].Key == DefaultSourceKey) {
			return
		}
		if len(got) == 0 || got[len(got)-1].Key != "microtime" {
			t.Fatalf("%q parsed without microtime: %v", raw, got)
		}
	})
}
