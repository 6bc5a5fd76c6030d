package query

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse: parsing never panics; a parsed search compiles (or fails
// with a positioned *Error), and its rendering parses back to the same
// tree.
func FuzzParse(f *testing.F) {
	for _, c := range searchCases {
		f.Add(c.q)
	}
	f.Add(`a and (b or "c \" d") not k:v* | select count(*)`)
	f.Add(`__tag__:__path__:/x/y.log and status in (200 *] or latency >= 1.5e3`)
	schema := DefaultSchema(testIndex())
	f.Fuzz(func(t *testing.T, text string) {
		q, err := Parse(text)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) || qe.Pos < 0 || qe.Pos > len(text) {
				t.Fatalf("bad error %v for %q", err, text)
			}
			return
		}
		if _, err := CompileSearch(q.Search, schema); err != nil {
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("compile %q: %v", text, err)
			}
		}
		s := q.Search.String()
		n2, err := ParseSearch(s)
		if err != nil {
			t.Fatalf("rendering %q of %q does not parse: %v", s, text, err)
		}
		if n2.String() != s {
			t.Fatalf("rendering not stable: %q → %q → %q", text, s, n2.String())
		}
		if q.HasSQL {
			_, _ = q.SandboxSQL(SandboxOptions{})
		}
	})
}

// FuzzSandbox: the sandbox never panics, errors are positioned, and its
// output is a fixed point: sandboxing it again changes nothing (the
// output stays inside the admitted language).
func FuzzSandbox(f *testing.F) {
	for _, s := range []string{
		`select status, count(*) as c group by status order by c desc limit 10`,
		`with x as (select a from log) select * from x, log l join log m on l.a = m.a`,
		`select date_format(from_unixtime(__time__), '%Y-%m-%d %H:%i') as t, approx_percentile(x, 0.5)`,
		`select * from read_csv('x') -- no`,
		`select 1 /* /* */ */; copy log to 'x'`,
		`from log select a limit 1, 2`,
		`select a is distinct from b, extract(year from t), cast(x as decimal(10, 2))`,
		`select * from (log a cross join (select 1) b) t(x, y)`,
	} {
		f.Add(s)
	}
	opt := SandboxOptions{Logstore: "ls"}
	f.Fuzz(func(t *testing.T, sql string) {
		e, err := SandboxSQL(sql, opt)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) || qe.Pos < 0 || qe.Pos > len(sql) {
				t.Fatalf("bad error %v for %q", err, sql)
			}
			return
		}
		e2, err := SandboxSQL(e.SQL, opt)
		if err != nil {
			t.Fatalf("output %q of %q refused: %v", e.SQL, sql, err)
		}
		if e2.SQL != e.SQL {
			t.Fatalf("not a fixed point: %q → %q → %q", sql, e.SQL, e2.SQL)
		}
	})
}

// The ASCII fast path of AppendValue gives the same token text as the
// general rune-by-rune path, whatever the bytes and token set.
func FuzzAppendValue(f *testing.F) {
	for _, s := range []string{"GET /api/v1?x=中文", "a\x00B", "ABC def", "\xff\xfeX", "İstanbul ȺB", ",,, ", ""} {
		f.Add(s, "/ ?=,", false)
		f.Add(s, "", true)
	}
	f.Fuzz(func(t *testing.T, value, tokens string, caseSensitive bool) {
		var set []string
		if tokens != "" {
			set = []string{tokens}
		}
		tok := NewTokenizer(set, caseSensitive)
		prefix := []byte("x ")
		got := tok.AppendValue(slices.Clone(prefix), value)
		want := tok.appendSlow(slices.Clone(prefix), value, false, false)
		if string(got) != string(want) {
			t.Fatalf("AppendValue(%q) = %q, want %q", value, got, want)
		}
		// Invalid UTF-8 is tokenized as strings.ToValidUTF8 would have
		// left it, and the result is valid.
		clean := tok.AppendValue(slices.Clone(prefix), strings.ToValidUTF8(value, "\uFFFD"))
		if string(got) != string(clean) || !utf8.Valid(got) {
			t.Fatalf("AppendValue(%q) = %q, want %q (valid UTF-8)", value, got, clean)
		}
	})
}
