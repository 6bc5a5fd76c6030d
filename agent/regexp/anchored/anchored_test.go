package anchored

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// same asserts that re behaves exactly like regexp on the wrapped pattern.
func same(t testing.TB, expr string, opts Options, input []byte) {
	t.Helper()
	re, err := Compile(expr, opts)
	require.NoError(t, err)
	std := regexp.MustCompile(Wrap(expr, opts))
	want := std.FindSubmatchIndex(input)
	got := re.FindSubmatchIndex(nil, input)
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("pattern %q opts %+v input %q: submatches %v, regexp says %v (specialised=%v)",
			expr, opts, input, got, want, re.Specialised())
	}
	if gotM, wantM := re.Match(input), std.Match(input); gotM != wantM {
		t.Fatalf("pattern %q opts %+v input %q: Match %v, regexp says %v", expr, opts, input, gotM, wantM)
	}
}

var allOpts = []Options{
	{Anchor: Full},
	{Anchor: Prefix},
	{Anchor: Full, DotNL: true, MultiLine: true},
	{Anchor: Prefix, DotNL: true, MultiLine: true},
}

const nginxExpr = `(\S+) - (\S+) \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)".*`

func TestTrickyCasesMatchRegexp(t *testing.T) {
	cases := []struct {
		expr   string
		inputs []string
	}{
		{nginxExpr, []string{
			`10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "http://x/" "Mozilla/4.08"`,
			`10.0.0.1 - bob [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 - "-" "curl" "extra"`,
			`10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "-" 400 0 "-" "-"`,
			`日本 - - [x] "GET / H" 200 1 "é" "\xff\xfe"`,
			``,
		}},
		{`(.*)`, []string{"", "abc", "a\nb", "\xff\xfe\xfd", "é"}},
		{`(.*?)`, []string{"", "abc", "a\nb"}},
		{`(.+?)`, []string{"", "é", "éa", "\xe2\x82", "a"}},
		{`(.*?) (.*)`, []string{"a b c", "abc", " ", "a  b", "é é"}},
		{`(.*) (.*)`, []string{"a b c", "abc", " ", "a  b"}},
		{`(.*) (.*) (.*)`, []string{"a b c d e f g", "a b", strings.Repeat("x ", 50)}},
		{`(\S+)\s+(.*)`, []string{"GET /index", "GET", "  x", "a\t\tb c"}},
		{`(a|ab)(c|bcd)(d*)`, []string{"abcd", "acd", "abcdd", "ab"}},
		{`(a+)(a+)`, []string{"a", "aa", "aaaa"}},
		{`(a*?)(a*)`, []string{"", "aaa"}},
		{`(a*)(a*?)`, []string{"", "aaa"}},
		{`(a){2,4}`, []string{"a", "aa", "aaa", "aaaa", "aaaaa"}},
		{`(a){1,3}?(a*)`, []string{"a", "aaa", "aaaa"}},
		{`(ab){2}`, []string{"abab", "ab", "ababab"}},
		{`(?:(x)|(y))+`, []string{"xy", "yx", "x"}},
		{`(x)?(x)?y`, []string{"y", "xy", "xxy", "xxxy"}},
		{`((a)|b)*`, []string{"ab", "ba", ""}},
		{`\d{4}-\d{2}-\d{2}`, []string{"2024-01-01 12:00:00 INFO x", "2024-1-01", "\tat com.x"}},
		{`\[\d+-\d+-\d+.*`, []string{"[2024-01-01 x", "x[2024"}},
		{`(?i)get|post`, []string{"GET", "Post", "pOsTx"}},
		{`(?i)(k+)`, []string{"kK\u212a", "k"}},
		{`(?i)s`, []string{"\u017f", "S"}},
		{`\bfoo\b`, []string{"foo", "foobar"}},
		{`(é+)(.)`, []string{"ééé", "éé\xff", "é"}},
		{`(.)(.)`, []string{"éa", "\xff\xfe", "\xe2\x82\xac\xe2"}},
		{`(.?)(é)`, []string{"éé", "é", "aé"}},
		{`(.{2})(.*)`, []string{"日本語", "ab", "a"}},
		{`([^a]*)(\x{FFFD})`, []string{"\xff", "x\ufffd"}},
		{"(\ufffd)", []string{"\xff", "\ufffd"}},
		{`([\x{100}-\x{200}]+)`, []string{"ĀĀ", "a"}},
		{`([^\x{100}]+)(.*)`, []string{"aĀb"}},
		{`^a$`, []string{"a", "a\n", "a\nb"}},
		{`(a$)\n(^b)`, []string{"a\nb"}},
		{`(.*)$`, []string{"abc", "a\nb"}},
		{`x*`, []string{"", "xxx", "xxy"}},
		{`[a-c]{0,2}c`, []string{"c", "ac", "acc", "accc"}},
		{`(\w+)=("[^"]*"|\S*)`, []string{`a="b c"`, `a=b`, `a=`, `a="b`}},
		{`(\d+|-)`, []string{"-", "12", "1-"}},
		{`(?:GET|POST|PUT) (\S+)`, []string{"GET /", "PUT /x", "PATCH /"}},
		{`()`, []string{"", "a"}},
		{`(a|)b`, []string{"b", "ab"}},
		{`(|a)b`, []string{"b", "ab"}},
		{`(\s*)(\S*)(\s*)`, []string{"  ab  ", "", "\u00a0x"}},
		{`([\d.]+) (\S+) (?P<name>[^ ]+)`, []string{"1.2.3.4 a b", "1.2 a"}},
		{`\[([^\]]*)\]\s+\[(\w+)\]\s+(.*)`, []string{"[2024-01-01 12:00:00.123]\t[INFO]\tmsg", "[]  [x] "}},
	}
	for _, tc := range cases {
		for _, opts := range allOpts {
			for _, in := range tc.inputs {
				same(t, tc.expr, opts, []byte(in))
			}
		}
	}
}

func TestSpecialisedShapes(t *testing.T) {
	fast := []string{
		nginxExpr,
		`(.*)`,
		`(\S+)\s+(.*)`,
		`(\d+-\d+-\d+\s\d+:\d+:\d+,\d+)\s+(\w+)\s+\[([^\]]+)\]\s+(\S+)\s+-\s+(.*)`,
		`\d{4}-\d{2}-\d{2}`,
		`(?i)(get|put)`,
		`(a){2,4}`,
		`(x)?y`,
		`(.*?) (.*)`,
	}
	for _, expr := range fast {
		re := MustCompile(expr, Options{Anchor: Full, DotNL: true, MultiLine: true})
		require.True(t, re.Specialised(), "%q should compile to the fast path", expr)
	}
	slow := []string{`\bfoo`, `(ab)+`, `(?i)k`, `([é-ü]+)`, "\ufffd"}
	for _, expr := range slow {
		re := MustCompile(expr, Options{Anchor: Full})
		require.False(t, re.Specialised(), "%q must fall back to regexp", expr)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, expr := range []string{`a)(b`, `(`, `[z-a]`, `a{2000}`, `\8`} {
		_, err := Compile(expr, Options{Anchor: Full})
		require.Error(t, err, expr)
		require.Contains(t, err.Error(), "invalid regular expression")
	}
	_, err := Compile(`a`, Options{})
	require.Error(t, err)
}

func TestBudgetFallsBackOnPathologicalInput(t *testing.T) {
	expr := `(.*) (.*) (.*) (.*)x`
	re := MustCompile(expr, Options{Anchor: Full})
	in := []byte(strings.Repeat("a ", 2000))
	require.True(t, re.Specialised())
	same(t, expr, Options{Anchor: Full}, in)
	same(t, expr, Options{Anchor: Full}, append(in, 'x'))
}

func TestFindSubmatchIndexReusesDst(t *testing.T) {
	re := MustCompile(`(a)(b)`, Options{Anchor: Full})
	dst := make([]int, 0, 16)
	got := re.FindSubmatchIndex(dst, []byte("ab"))
	require.Equal(t, []int{0, 2, 0, 1, 1, 2}, got)
	require.Equal(t, &dst[:1][0], &got[0], "result must reuse dst's array")
	in := []byte("ab")
	allocs := testing.AllocsPerRun(100, func() { re.FindSubmatchIndex(dst, in) })
	require.Zero(t, allocs)
}
