package parse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/pipeline"
)

const readTime = 1_700_000_000

// out is one event as the next stage saw it.
type out struct {
	time   uint32
	nsec   uint32
	fields string // "k=v|k=v"
}

func fieldsString(fs []pipeline.Field) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, f.Key+"="+f.Value)
	}
	return strings.Join(parts, "|")
}

type capture struct {
	events []out
	batch  int
}

func (c *capture) Consume(_ context.Context, b *pipeline.Batch) error {
	c.batch++
	for _, e := range b.Events {
		c.events = append(c.events, out{e.Time, e.TimeNs, fieldsString(e.Fields)})
	}
	if b.Ack != nil {
		b.Ack.Done(nil)
	}
	return nil
}

func batchOf(lines ...string) *pipeline.Batch {
	b := pipeline.NewBatch()
	for _, l := range lines {
		b.BeginEvent(readTime, 0)
		b.AddField(DefaultSourceKey, []byte(l))
		b.EndEvent()
	}
	return b
}

func newTestStage(t *testing.T, cfg Config) (*Stage, *capture, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	c := &capture{}
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	s, err := NewStage(cfg, c, Settings{
		Registerer: reg,
		Location:   time.UTC,
		Now:        func() time.Time { return time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC) },
	})
	require.NoError(t, err)
	return s, c, reg
}

func run(t *testing.T, cfg Config, lines ...string) ([]string, *capture, *prometheus.Registry) {
	t.Helper()
	s, c, reg := newTestStage(t, cfg)
	require.NoError(t, s.Consume(context.Background(), batchOf(lines...)))
	var got []string
	for _, e := range c.events {
		got = append(got, e.fields)
	}
	return got, c, reg
}

func failures(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "sluice_parse_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestRegex(t *testing.T) {
	cfg := Config{LogType: Regex, Regex: `(\S+) (\d+) (.*)`, Keys: []string{"a", "n", "rest"}, DiscardUnmatch: false}
	got, _, reg := run(t, cfg,
		"x 12 hello world",
		"x 12 multi\nline",
		"x twelve no",
		"",
		"x 1 ",
		"\xff\xfe 3 \x00",
	)
	require.Equal(t, []string{
		"a=x|n=12|rest=hello world",
		"a=x|n=12|rest=multi\nline",
		"__raw_log__=x twelve no",
		"__raw_log__=",
		"a=x|n=1|rest=",
		"a=\xff\xfe|n=3|rest=\x00",
	}, got)
	require.InDelta(t, 2, failures(t, reg, "regex_unmatched"), 0)
}

func TestRegexMustMatchWholeEvent(t *testing.T) {
	got, _, _ := run(t, Config{LogType: Regex, Regex: `(\d+)`, Keys: []string{"n"}}, "123", "123abc", "abc123")
	require.Equal(t, []string{"n=123", "__raw_log__=123abc", "__raw_log__=abc123"}, got)
}

func TestRegexOptionalGroupAndDefaults(t *testing.T) {
	got, _, _ := run(t, Config{LogType: Regex, Regex: `(a)?(b)`, Keys: []string{"x", "y"}}, "b", "ab")
	require.Equal(t, []string{"x=|y=b", "x=a|y=b"}, got)
	got, _, _ = run(t, Config{LogType: Regex}, "anything\ngoes")
	require.Equal(t, []string{"content=anything\ngoes"}, got)
}

func TestDiscardUnmatchAndRawLog(t *testing.T) {
	cfg := Config{LogType: Regex, Regex: `(\d+)`, Keys: []string{"n"}, DiscardUnmatch: true, EnableRawLog: true}
	s, c, reg := newTestStage(t, cfg)
	var acked []error
	b := batchOf("1", "x", "2")
	b.Ack = pipeline.AckFunc(func(err error) { acked = append(acked, err) })
	require.NoError(t, s.Consume(context.Background(), b))
	require.Equal(t, []out{{readTime, 0, "n=1|__raw__=1"}, {readTime, 0, "n=2|__raw__=2"}}, c.events)
	require.Equal(t, []error{nil}, acked)
	require.InDelta(t, 1, testutil.ToFloat64(s.m.discarded[reasonRegex]), 0)
	require.InDelta(t, 1, failures(t, reg, "regex_unmatched"), 0)

	// A batch whose every event is dropped is acked by the stage and not passed on.
	acked = nil
	b = batchOf("x", "y")
	b.Ack = pipeline.AckFunc(func(err error) { acked = append(acked, err) })
	require.NoError(t, s.Consume(context.Background(), b))
	require.Equal(t, []error{nil}, acked)
	require.Equal(t, 1, c.batch)
	require.InDelta(t, 3, testutil.ToFloat64(s.m.discarded[reasonRegex]), 0)
}

func TestKeepsOtherFieldsAndBatchMetadata(t *testing.T) {
	s, c, _ := newTestStage(t, Config{LogType: JSON})
	b := pipeline.NewBatch()
	b.Topic, b.Source = "topic", "10.0.0.1"
	b.AddTag("__path__", "/var/log/a.log")
	b.BeginEvent(5, 6)
	b.AddFieldString("_source_", "stdout")
	b.AddFieldString("content", `{"a":1}`)
	b.EndEvent()
	b.BeginEvent(7, 0)
	b.AddFieldString("other", "x")
	b.EndEvent()
	var seen *pipeline.Batch
	next := pipeline.ConsumerFunc(func(ctx context.Context, ob *pipeline.Batch) error {
		seen = ob
		require.Equal(t, "topic", ob.Topic)
		require.Equal(t, "10.0.0.1", ob.Source)
		require.Equal(t, []pipeline.Field{{Key: "__path__", Value: "/var/log/a.log"}}, ob.Tags)
		return c.Consume(ctx, ob)
	})
	s.next = next
	require.NoError(t, s.Consume(context.Background(), b))
	require.NotNil(t, seen)
	require.Equal(t, []out{{5, 6, "_source_=stdout|a=1"}, {7, 0, "other=x"}}, c.events)
	require.InDelta(t, 1, testutil.ToFloat64(s.m.failures[reasonNoSource]), 0)
}

func TestNextErrorIsReturned(t *testing.T) {
	boom := errors.New("boom")
	s, err := NewStage(Config{LogType: JSON}, pipeline.ConsumerFunc(func(context.Context, *pipeline.Batch) error { return boom }), Settings{})
	require.NoError(t, err)
	require.ErrorIs(t, s.Consume(context.Background(), batchOf(`{}`)), boom)
}

func TestJSON(t *testing.T) {
	got, _, reg := run(t, Config{LogType: JSON},
		`{"a":"x","n":1.50,"b":true,"z":null,"o":{"k": [1, "two", {"x":null}]},"e":"q\"\u00e9\n"}`,
		` {"k":"v"} `,
		`{"dup":1,"dup":2}`,
		`{}`,
		`[1,2]`,
		`{"a":`,
		`{"a":1} trailing`,
		`not json`,
		``,
		`{"\u0041":"\ud83d\ude00"}`,
	)
	require.Equal(t, []string{
		"a=x|n=1.50|b=true|z=|o={\"k\":[1,\"two\",{\"x\":null}]}|e=q\"é\n",
		"k=v",
		"dup=1|dup=2",
		"",
		"__raw_log__=[1,2]",
		`__raw_log__={"a":`,
		`__raw_log__={"a":1} trailing`,
		"__raw_log__=not json",
		"__raw_log__=",
		"A=😀",
	}, got)
	require.InDelta(t, 5, failures(t, reg, "json_invalid"), 0)
}

// TestJSONStrict: what RFC 8259 (and Logtail's rapidjson) refuses is a
// parse failure kept as __raw_log__, not fields made from a guess.
func TestJSONStrict(t *testing.T) {
	invalid := []string{
		`{"s":"\ud800"}`,       // lone high surrogate
		`{"s":"\udc00 x"}`,     // lone low surrogate
		`{"s":"\ud800\u0041"}`, // high surrogate, then not a low one
		`{"\ud800":1}`,         // in a key
		`{"s":"\x41"}`,         // not a JSON escape
		`{"n":01}`,             // leading zero
		`{"n":-01.5}`,          // leading zero after the sign
		`{"n":NaN}`,            // not a JSON number
		`{"n":Infinity}`,       // nor this
		`{"n":1.}`,             // no digits after the point
		"{\"s\":\"a\tb\"}",     // raw tab in a string
		"{\"s\":\"a\x01b\"}",   // raw control character
		"{\"k\x1f\":1}",        // raw control character in a key
		`{"a":[1,]}`,           // trailing comma
		`{"a":'x'}`,            // single quotes
	}
	got, _, reg := run(t, Config{LogType: JSON}, invalid...)
	for i, in := range invalid {
		require.Equal(t, "__raw_log__="+in, got[i], "input %q", in)
	}
	require.InDelta(t, len(invalid), failures(t, reg, "json_invalid"), 0)

	got, _, reg = run(t, Config{LogType: JSON},
		`{"s":"\\ud800"}`,             // an escaped backslash, then text
		`{"s":"\uD83D\uDE00 \u00e9"}`, // a pair (upper-case hex) and a BMP escape
		"{\"n\":-0,\t\"e\":1.5E+3,\"z\":0}",
	)
	require.Equal(t, []string{`s=\ud800`, "s=😀 é", "n=-0|e=1.5E+3|z=0"}, got)
	require.InDelta(t, 0, failures(t, reg, "json_invalid"), 0)
}

func TestJSONTime(t *testing.T) {
	_, c, reg := run(t, Config{LogType: JSON, TimeKey: "ts", TimeFormat: "%Y-%m-%dT%H:%M:%S.%f%z"},
		`{"ts":"2024-01-02T03:04:05.5+08:00","m":"a"}`,
		`{"ts":"2024-01-02T03:04:05.5+08:00","m":"same time, cached"}`,
		`{"ts":"yesterday","m":"b"}`,
		`{"m":"no time"}`,
	)
	want := uint32(time.Date(2024, 1, 1, 19, 4, 5, 0, time.UTC).Unix())
	require.Equal(t, want, c.events[0].time)
	require.Equal(t, uint32(500000000), c.events[0].nsec)
	require.Equal(t, want, c.events[1].time)
	require.Equal(t, uint32(readTime), c.events[2].time, "unparsable time keeps the read time")
	require.Equal(t, "ts=yesterday|m=b", c.events[2].fields, "and the event keeps its fields")
	require.Equal(t, uint32(readTime), c.events[3].time)
	require.InDelta(t, 2, failures(t, reg, "time_format"), 0)
}

func TestTimezone(t *testing.T) {
	cfg := Config{LogType: Regex, Regex: `(\S+ \S+) (.*)`, Keys: []string{"time", "msg"}, TimeFormat: "%Y-%m-%d %H:%M:%S",
		AdjustTimezone: true, LogTimezone: "GMT+08:00"}
	_, c, _ := run(t, cfg, "2024-01-02 08:00:00 hi")
	require.Equal(t, uint32(time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC).Unix()), c.events[0].time)
	cfg.AdjustTimezone = false // Settings.Location (UTC in tests)
	_, c, _ = run(t, cfg, "2024-01-02 08:00:00 hi")
	require.Equal(t, uint32(time.Date(2024, 1, 2, 8, 0, 0, 0, time.UTC).Unix()), c.events[0].time)
}

func TestDelimiter(t *testing.T) {
	base := Config{LogType: Delimiter, Separator: ",", Keys: []string{"a", "b", "c"}, AutoExtend: true}
	cases := []struct {
		name string
		mod  func(*Config)
		in   string
		want string
	}{
		{"plain", nil, "1,2,3", "a=1|b=2|c=3"},
		{"empty columns", nil, ",,", "a=|b=|c="},
		{"quoted with separator", nil, `"x,y",2,3`, "a=x,y|b=2|c=3"},
		{"doubled quote", nil, `"say ""hi""",2,""`, `a=say "hi"|b=2|c=`},
		{"quote inside unquoted column is literal", nil, `a"b,2,3`, `a=a"b|b=2|c=3`},
		{"unterminated quote", nil, `"abc,2,3`, `__raw_log__="abc,2,3`},
		{"text after closing quote", nil, `"a"x,2,3`, `__raw_log__="a"x,2,3`},
		{"extra columns extended", nil, "1,2,3,4,5", "a=1|b=2|c=3|__column3__=4|__column4__=5"},
		{"extra columns kept whole", func(c *Config) { c.AutoExtend = false }, `1,2,3,4,"5,6"`, `a=1|b=2|c=3|__column3__=,4,"5,6"`},
		{"exact columns without extend", func(c *Config) { c.AutoExtend = false }, "1,2,3", "a=1|b=2|c=3"},
		{"spaces and CR trimmed at the line ends", nil, "  1,2, 3 \r", "a=1|b=2|c= 3"},
		{"blank line left as it is", nil, "   ", "content=   "},
		{"too few columns", nil, "1,2", "__raw_log__=1,2"},
		{"too few accepted", func(c *Config) { c.AcceptNoEnoughKeys = true }, "1,2", "a=1|b=2"},
		{"tab", func(c *Config) { c.Separator = "\t" }, "1\t2\t3", "a=1|b=2|c=3"},
		{"escaped tab", func(c *Config) { c.Separator = `\t` }, "1\t\"2\t\"\t3", "a=1|b=2\t|c=3"},
		{"multi-char", func(c *Config) { c.Separator = "||" }, `1||"2"||3|`, `a=1|b="2"|c=3|`},
		{"single quote", func(c *Config) { c.Quote = "'" }, `'1,x',2,3`, "a=1,x|b=2|c=3"},
		{"multibyte utf8", func(c *Config) { c.Separator = "，" }, "一，二，三", "a=一|b=二|c=三"},
		{"empty line", func(c *Config) { c.AcceptNoEnoughKeys = true }, "", "content="},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			got, _, _ := run(t, cfg, tc.in)
			require.Equal(t, []string{tc.want}, got)
		})
	}
	// Many extra columns get computed names.
	line := strings.Repeat("x,", 100) + "x"
	got, _, _ := run(t, base, line)
	require.True(t, strings.HasSuffix(got[0], "|__column100__=x"), got[0])
}

func TestApsara(t *testing.T) {
	cst := time.FixedZone("", 8*3600)
	cfg := Config{LogType: Apsara, AdjustTimezone: true, LogTimezone: "GMT+08:00"}
	_, c, reg := run(t, cfg,
		"[2024-01-02 03:04:05.123456]\t[INFO]\t[12345]\t[src/file.cpp:42]\tuser:bob\tmsg:a:b\tnocolon",
		"[1700000000]\t[WARNING]\tk:v",
		"[2024-01-02 03:04:05]\tk:v",
		"no time",
		"[2024-13-02 03:04:05]\tk:v",
		"[]",
		"",
	)
	require.Len(t, c.events, 7)
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, cst).Unix()
	require.Equal(t, out{uint32(t0), 123456000, fmt.Sprintf("__LEVEL__=INFO|__THREAD__=12345|__FILE__=src/file.cpp|__LINE__=42|user=bob|msg=a:b|microtime=%d", t0*1e6+123456)}, c.events[0])
	require.Equal(t, out{1700000000, 0, "__LEVEL__=WARNING|k=v|microtime=1700000000000000"}, c.events[1])
	require.Equal(t, out{uint32(t0), 0, fmt.Sprintf("k=v|microtime=%d", t0*1e6)}, c.events[2])
	for i, raw := range []string{"no time", "[2024-13-02 03:04:05]\tk:v", "[]"} {
		require.Equal(t, out{readTime, 0, "__raw_log__=" + raw}, c.events[3+i])
	}
	require.Equal(t, out{readTime, 0, "content="}, c.events[6], "an empty event is left as it is")
	require.InDelta(t, 3, failures(t, reg, "apsara_format"), 0)
}

func TestNginx(t *testing.T) {
	cfg := Config{LogType: Nginx, TimeKey: "time_local", TimeFormat: NginxTimeFormat}
	got, c, _ := run(t, cfg,
		`10.0.0.1 - bob [10/Oct/2000:13:55:36 -0700] "GET /a.gif?x=1 HTTP/1.1" 200 2326 "http://x/" "Mozilla/4.08 (X)"`,
		`10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "-" 400 0 "-" "-" "1.2.3.4"`,
		`10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "\x16\x03\x01" 400 - "-" "-"`,
		`garbage`,
	)
	require.Equal(t, []string{
		`remote_addr=10.0.0.1|remote_user=bob|time_local=10/Oct/2000:13:55:36 -0700|request_method=GET|request_uri=/a.gif?x=1|http_version=HTTP/1.1|status=200|body_bytes_sent=2326|http_referer=http://x/|http_user_agent=Mozilla/4.08 (X)`,
		`remote_addr=10.0.0.1|remote_user=-|time_local=10/Oct/2000:13:55:36 -0700|request_method=-|request_uri=|http_version=|status=400|body_bytes_sent=0|http_referer=-|http_user_agent=-`,
		`remote_addr=10.0.0.1|remote_user=-|time_local=10/Oct/2000:13:55:36 -0700|request_method=\x16\x03\x01|request_uri=|http_version=|status=400|body_bytes_sent=-|http_referer=-|http_user_agent=-`,
		`__raw_log__=garbage`,
	}, got)
	require.Equal(t, uint32(time.Date(2000, 10, 10, 20, 55, 36, 0, time.UTC).Unix()), c.events[0].time)
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{LogType: "xml_log"}, "logType"},
		{Config{LogType: Regex, Regex: `(a`}, "inputDetail.regex"},
		{Config{LogType: Regex, Regex: `(a)(b)`, Keys: []string{"a"}}, "2 capture groups"},
		{Config{LogType: Regex, Regex: `(a)`, Keys: []string{""}}, "key[0]"},
		{Config{LogType: Delimiter, Keys: []string{"a"}}, "separator"},
		{Config{LogType: Delimiter, Separator: ",", Quote: "ab", Keys: []string{"a"}}, "quote"},
		{Config{LogType: Delimiter, Separator: ",", Quote: ",", Keys: []string{"a"}}, "equals the separator"},
		{Config{LogType: Delimiter, Separator: ","}, "inputDetail.key"},
		{Config{LogType: JSON, TimeFormat: "%Q"}, "timeFormat"},
		{Config{LogType: JSON, AdjustTimezone: true, LogTimezone: "Mars"}, "logTimezone"},
	}
	for _, tc := range cases {
		_, err := NewStage(tc.cfg, &capture{}, Settings{})
		require.ErrorContains(t, err, tc.want, "%+v", tc.cfg)
	}
}

func TestSharedRegistererAndConcurrentUse(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c := pipeline.ConsumerFunc(func(context.Context, *pipeline.Batch) error { return nil })
	s1, err := NewStage(Config{Name: "a", LogType: JSON}, c, Settings{Registerer: reg})
	require.NoError(t, err)
	_, err = NewStage(Config{Name: "b", LogType: JSON}, c, Settings{Registerer: reg})
	require.NoError(t, err)
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 200; i++ {
				_ = s1.Consume(context.Background(), batchOf(`{"a":1}`, `bad`))
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	require.InDelta(t, 800, testutil.ToFloat64(s1.m.failures[reasonJSON]), 0)
}

func TestNoneIsPassThrough(t *testing.T) {
	got, _, _ := run(t, Config{}, "x")
	require.Equal(t, []string{"content=x"}, got)
}

func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

func TestNginxPresetTimeKeyDefault(t *testing.T) {
	_, c, reg := run(t, Config{LogType: Nginx, TimeFormat: NginxTimeFormat},
		`1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-"`)
	require.Equal(t, uint32(971186136), c.events[0].time)
	require.Zero(t, failures(t, reg, "time_format"))
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	cases := []struct {
		cfg  Config
		line string
	}{
		{Config{LogType: Nginx, TimeFormat: NginxTimeFormat}, nginxLines(1)[0]},
		{Config{LogType: JSON, TimeFormat: "%s"}, `{"time":"1700000000","a":{"b":[1,2]},"s":"x\ty"}`},
		{Config{LogType: Delimiter, Separator: ",", Keys: []string{"a", "b"}, AutoExtend: true}, `1,"2,""x""",3`},
		{Config{LogType: Apsara}, "[2024-01-02 03:04:05.123456]\t[INFO]\t[1]\t[a.cpp:1]\tk:v"},
		{Config{LogType: Regex, Regex: `(\d+)`, Keys: []string{"n"}, EnableRawLog: true}, "not a number"},
	}
	for _, tc := range cases {
		s, err := NewStage(tc.cfg, pipeline.ConsumerFunc(func(context.Context, *pipeline.Batch) error { return nil }),
			Settings{Location: time.UTC})
		require.NoError(t, err)
		b := pipeline.NewBatch()
		fill := func() {
			b.Reset()
			for i := 0; i < 32; i++ {
				b.BeginEvent(readTime, 0)
				b.AddFieldString(DefaultSourceKey, tc.line)
				b.EndEvent()
			}
		}
		ctx := context.Background()
		fill()
		require.NoError(t, s.Consume(ctx, b))
		allocs := testing.AllocsPerRun(20, func() {
			fill()
			_ = s.Consume(ctx, b)
		})
		require.Zero(t, allocs, "%s", tc.cfg.LogType)
	}
}

func TestFailuresAreLoggedRateLimited(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	s, err := NewStage(Config{Name: "web", LogType: JSON}, &capture{}, Settings{Logger: logger})
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		require.NoError(t, s.Consume(context.Background(), batchOf("not json", "{}")))
	}
	require.Equal(t, 1, strings.Count(logs.String(), "parse failure"), logs.String())
	require.Contains(t, logs.String(), "config=web")
	require.Contains(t, logs.String(), `sample="not json"`)
	require.InDelta(t, 5, counterValue(s.m.failures[reasonJSON]), 0)
}
