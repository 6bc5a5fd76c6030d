package process

import (
	"context"
	"crypto/md5"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/pipeline"
)

type capture struct {
	batches []*pipeline.Batch
	events  []string
	tags    []string
}

func (c *capture) Consume(_ context.Context, b *pipeline.Batch) error {
	c.batches = append(c.batches, b)
	for _, e := range b.Events {
		var parts []string
		for _, f := range e.Fields {
			parts = append(parts, f.Key+"="+f.Value)
		}
		c.events = append(c.events, strings.Join(parts, "|"))
	}
	c.tags = c.tags[:0]
	for _, t := range b.Tags {
		c.tags = append(c.tags, t.Key+"="+t.Value)
	}
	if b.Ack != nil {
		b.Ack.Done(nil)
	}
	return nil
}

// batch builds events from "k=v|k=v" strings.
func batch(events ...string) *pipeline.Batch {
	b := pipeline.NewBatch()
	for _, e := range events {
		b.BeginEvent(1, 0)
		if e != "" {
			for _, kv := range strings.Split(e, "|") {
				k, v, _ := strings.Cut(kv, "=")
				b.AddFieldCopy([]byte(k), []byte(v))
			}
		}
		b.EndEvent()
	}
	return b
}

func newStage(t *testing.T, cfg Config) (*Stage, *capture) {
	t.Helper()
	c := &capture{}
	if cfg.Name == "" {
		cfg.Name = "cfg"
	}
	s, err := NewStage(cfg, c, Settings{Registerer: prometheus.NewPedanticRegistry()})
	require.NoError(t, err)
	return s, c
}

func TestFilterAllKeysMustMatch(t *testing.T) {
	s, c := newStage(t, Config{FilterKey: []string{"level", "msg"}, FilterRegex: []string{"ERROR|WARN", ".*timeout.*"}})
	var acked []error
	b := batch(
		"level=ERROR|msg=read timeout",
		"level=INFO|msg=read timeout",
		"level=ERROR|msg=ok",
		"msg=timeout",
		"level=WARN|msg=multi\nline timeout\n",
		"level=xERROR|msg=timeout", // full match: a prefix is not enough
	)
	b.Ack = pipeline.AckFunc(func(err error) { acked = append(acked, err) })
	require.NoError(t, s.Consume(context.Background(), b))
	require.Equal(t, []string{"level=ERROR|msg=read timeout", "level=WARN|msg=multi\nline timeout\n"}, c.events)
	require.InDelta(t, 1, testutil.ToFloat64(s.missing), 0)
	require.InDelta(t, 3, testutil.ToFloat64(s.mismatch), 0)
	require.Equal(t, []error{nil}, acked)

	// Everything filtered: acked here, not passed on.
	acked = nil
	b = batch("level=INFO|msg=x")
	b.Ack = pipeline.AckFunc(func(err error) { acked = append(acked, err) })
	require.NoError(t, s.Consume(context.Background(), b))
	require.Equal(t, []error{nil}, acked)
	require.Len(t, c.batches, 1)
}

func md5Upper(s string) string { return fmt.Sprintf("%X", md5.Sum([]byte(s))) }

func TestMasking(t *testing.T) {
	cases := []struct {
		name string
		sk   SensitiveKey
		in   string
		want string
	}{
		{"const first", SensitiveKey{Key: "content", Type: "const", RegexBegin: "'password':'", RegexContent: "[^']*", Const: "********"},
			"'account':'1812213231432969','password':'04a23f38','password':'second'",
			"'account':'1812213231432969','password':'********','password':'second'"},
		{"const all", SensitiveKey{Key: "content", Type: "const", RegexBegin: "pwd=", RegexContent: `\w+`, All: true, Const: "***"},
			"a pwd=abc b pwd=def", "a pwd=*** b pwd=***"},
		{"md5 all", SensitiveKey{Key: "content", Type: "md5", RegexBegin: "card=", RegexContent: `\d+`, All: true},
			"card=1234 x card=5678", "card=" + md5Upper("1234") + " x card=" + md5Upper("5678")},
		{"const with dollar is literal", SensitiveKey{Key: "content", Type: "const", RegexBegin: "k=", RegexContent: `\S+`, Const: "$1${x}"},
			"k=secret", "k=$1${x}"},
		{"no match leaves value", SensitiveKey{Key: "content", Type: "md5", RegexBegin: "card=", RegexContent: `\d+`},
			"nothing here", "nothing here"},
		{"other key untouched", SensitiveKey{Key: "other", Type: "const", RegexBegin: "", RegexContent: `.*`, Const: "x"},
			"secret", "secret"},
		{"empty begin", SensitiveKey{Key: "content", Type: "const", RegexContent: `\d{3}-\d{4}`, All: true, Const: "<phone>"},
			"call 555-1234 or 555-9876", "call <phone> or <phone>"},
		{"utf8", SensitiveKey{Key: "content", Type: "const", RegexBegin: "名字:", RegexContent: `\p{Han}+`, Const: "某"},
			"名字:张三 年龄:3", "名字:某 年龄:3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c := newStage(t, Config{SensitiveKeys: []SensitiveKey{tc.sk}})
			b := pipeline.NewBatch()
			b.BeginEvent(1, 0)
			b.AddFieldString("content", tc.in)
			b.EndEvent()
			require.NoError(t, s.Consume(context.Background(), b))
			require.Equal(t, []string{"content=" + tc.want}, c.events)
		})
	}
}

func TestMaskEmptyMatchesTerminate(t *testing.T) {
	s, c := newStage(t, Config{SensitiveKeys: []SensitiveKey{{Key: "content", Type: "const", RegexContent: `x*`, All: true, Const: "-"}}})
	require.NoError(t, s.Consume(context.Background(), batch("content=abxxc")))
	require.Len(t, c.events, 1)
	require.Equal(t, "content=-a-b-c-", c.events[0], "like Go's ReplaceAll and RE2's GlobalReplace")
}

func TestTags(t *testing.T) {
	env := map[string]string{"_pod_name_": "web-1", "_node_ip_": "10.0.0.9"}
	tags := EnvTags(" _pod_name_|_namespace_||_node_ip_ ", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.Equal(t, []pipeline.Field{{Key: "_pod_name_", Value: "web-1"}, {Key: "_namespace_", Value: ""}, {Key: "_node_ip_", Value: "10.0.0.9"}}, tags)

	s, c := newStage(t, Config{Hostname: "node-a", UserDefinedID: "k8s-group", EnvTags: tags})
	b := batch("content=x")
	b.AddTag("__path__", "/var/log/a.log")
	b.AddTag("_pod_name_", "from-input") // an existing tag wins
	require.NoError(t, s.Consume(context.Background(), b))
	require.Equal(t, []string{"__path__=/var/log/a.log", "_pod_name_=from-input", "__hostname__=node-a",
		"__user_defined_id__=k8s-group", "_namespace_=", "_node_ip_=10.0.0.9"}, c.tags)
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{FilterKey: []string{"a"}}, "filterRegex has 0"},
		{Config{FilterKey: []string{"a"}, FilterRegex: []string{"("}}, "filterRegex[0]"},
		{Config{FilterKey: []string{""}, FilterRegex: []string{"x"}}, "filterKey[0] is empty"},
		{Config{SensitiveKeys: []SensitiveKey{{Key: "c", Type: "sha1", RegexContent: "x"}}}, "use const or md5"},
		{Config{SensitiveKeys: []SensitiveKey{{Type: "const", RegexContent: "x"}}}, "key is empty"},
		{Config{SensitiveKeys: []SensitiveKey{{Key: "c", Type: "md5"}}}, "regex_content is empty"},
		{Config{SensitiveKeys: []SensitiveKey{{Key: "c", Type: "md5", RegexBegin: "(", RegexContent: "x"}}}, "regex_begin"},
		{Config{EnvTags: []pipeline.Field{{Value: "x"}}}, "ALIYUN_LOG_ENV_TAGS"},
	}
	for _, tc := range cases {
		_, err := NewStage(tc.cfg, &capture{}, Settings{})
		require.ErrorContains(t, err, tc.want)
	}
}

func TestSharedRegisterer(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cfg := Config{FilterKey: []string{"a"}, FilterRegex: []string{"x"}}
	_, err := NewStage(cfg, &capture{}, Settings{Registerer: reg})
	require.NoError(t, err)
	_, err = NewStage(cfg, &capture{}, Settings{Registerer: reg})
	require.NoError(t, err)
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	s, err := NewStage(Config{FilterKey: []string{"level"}, FilterRegex: []string{"ERROR|INFO"}, Hostname: "h",
		EnvTags: []pipeline.Field{{Key: "_pod_name_", Value: "p"}}},
		pipeline.ConsumerFunc(func(context.Context, *pipeline.Batch) error { return nil }), Settings{})
	require.NoError(t, err)
	b := pipeline.NewBatch()
	fill := func() {
		b.Reset()
		for i := 0; i < 64; i++ {
			b.BeginEvent(1, 0)
			b.AddFieldString("level", [...]string{"ERROR", "DEBUG"}[i%2])
			b.AddFieldString("msg", "hello")
			b.EndEvent()
		}
	}
	fill()
	require.NoError(t, s.Consume(context.Background(), b))
	allocs := testing.AllocsPerRun(50, func() {
		fill()
		_ = s.Consume(context.Background(), b)
	})
	require.Zero(t, allocs)
}
