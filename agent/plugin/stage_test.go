package plugin

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/agent/pipeline/pipelinetest"
	"github.com/sluicelog/sluice/logconfig"
)

// processors decodes a plugin "processors" array as a config carries it.
func processors(t *testing.T, js string) []logconfig.PluginItem {
	t.Helper()
	var items []logconfig.PluginItem
	require.NoError(t, json.Unmarshal([]byte(js), &items))
	return items
}

// run passes one batch of events (field lists) through a stage built from
// js and returns what reached the next stage.
func run(t *testing.T, js string, events ...map[string]string) ([]pipelinetest.Event, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	rec := &pipelinetest.Recorder{}
	s, err := NewStage(Config{Name: "c", Processors: processors(t, js)}, rec, Settings{Registerer: reg})
	require.NoError(t, err)
	b := pipeline.NewBatch()
	acked := 0
	b.Ack = pipeline.AckFunc(func(error) { acked++ })
	b.AddTag("__path__", "/stdlog/app/0.log")
	for _, ev := range events {
		b.BeginEvent(1700000000, 0)
		keys := []string{"content", "_source_"} // inputs put content first
		for _, k := range keys {
			if v, ok := ev[k]; ok {
				b.AddFieldString(k, v)
			}
		}
		for k, v := range ev {
			if k != "content" && k != "_source_" {
				b.AddFieldString(k, v)
			}
		}
		b.EndEvent()
	}
	require.NoError(t, s.Consume(context.Background(), b))
	got := rec.Events()
	if len(got) == 0 {
		assert.Equal(t, 1, acked, "an emptied batch is acked by the stage")
	}
	for _, e := range got {
		assert.Equal(t, "/stdlog/app/0.log", e.Path(), "tags pass through")
	}
	return got, reg
}

func fields(evs []pipelinetest.Event) []map[string]string {
	var out []map[string]string
	for _, e := range evs {
		out = append(out, e.FieldMap())
	}
	return out
}

// The Logtail plugin docs' processor_json example, and the guides' advice
// for stdout: JSON lines parsed into fields.
func TestJSON(t *testing.T) {
	got, _ := run(t, `[{"type":"processor_json","detail":{"SourceKey":"content","KeepSource":false,"ExpandDepth":1,"ExpandConnector":""}}]`,
		map[string]string{"content": `{"key1": 123456, "key2": "abcd", "nested": {"a": 1}}`, "_source_": "stdout"})
	assert.Equal(t, []map[string]string{{"key1": "123456", "key2": "abcd", "nested": `{"a":1}`, "_source_": "stdout"}}, fields(got))

	// Defaults: the source is kept, nested objects flattened with "_",
	// arrays kept as JSON, null empty.
	got, _ = run(t, `[{"type":"processor_json","detail":{"SourceKey":"content"}}]`,
		map[string]string{"content": `{"a":{"b":{"c":"deep"}},"list":[1,2],"n":null,"t":true}`})
	assert.Equal(t, []map[string]string{{"content": `{"a":{"b":{"c":"deep"}},"list":[1,2],"n":null,"t":true}`,
		"a_b_c": "deep", "list": "[1,2]", "n": "", "t": "true"}}, fields(got))

	// Prefixes and arrays.
	got, _ = run(t, `[{"type":"processor_json","detail":{"SourceKey":"content","KeepSource":false,"UseSourceKeyAsPrefix":true,"Prefix":"j_","ExpandArray":true}}]`,
		map[string]string{"content": `{"a":{"b":1},"l":["x",{"y":2}]}`})
	assert.Equal(t, []map[string]string{{"j_content_a_b": "1", "j_content_l[0]": "x", "j_content_l[1]_y": "2"}}, fields(got))
}

func TestJSONNotAnObject(t *testing.T) {
	got, reg := run(t, `[{"type":"processor_json","detail":{"SourceKey":"content","KeepSource":false}}]`,
		map[string]string{"content": "plain text"}, map[string]string{"other": "x"})
	// KeepSourceIfParseError (default true) keeps the line; a missing
	// source leaves the event alone. Both are counted.
	assert.Equal(t, []map[string]string{{"content": "plain text"}, {"other": "x"}}, fields(got))
	assert.Equal(t, 1.0, failures(t, reg, "0:processor_json", "parse_error"))
	assert.Equal(t, 1.0, failures(t, reg, "0:processor_json", "no_key"))

	got, _ = run(t, `[{"type":"processor_json","detail":{"SourceKey":"content","KeepSourceIfParseError":false}}]`,
		map[string]string{"content": "plain text", "_source_": "stderr"})
	assert.Equal(t, []map[string]string{{"_source_": "stderr"}}, fields(got))
}

// failures reads sluice_plugin_failures_total for one processor and reason.
func failures(t *testing.T, reg *prometheus.Registry, processor, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["processor"] == processor && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no sluice_plugin_failures_total for %s %s", processor, reason)
	return 0
}

// The Logtail plugin docs' processor_regex example.
func TestRegex(t *testing.T) {
	const line = `127.0.0.1 - - [10/Aug/2017:14:57:51 +0800] "POST /PutData?Category=YunOsAccountOpLog" 0.024 18204 200 37 "-" "aliyun-sdk-java"`
	got, _ := run(t, `[{"type":"processor_regex","detail":{"SourceKey":"content",
		"Regex":"([\\d\\.]+) \\S+ \\S+ \\[(\\S+) \\S+\\] \"(\\w+) ([^\\\"]*)\" ([\\d\\.]+) (\\d+) (\\d+) (\\d+|-) \"([^\\\"]*)\" \"([^\\\"]*)\"",
		"Keys":["ip","time","method","url","request_time","request_length","status","length","ref_url","browser"]}}]`,
		map[string]string{"content": line, "_source_": "stdout"}, map[string]string{"content": "not an access line"})
	require.Len(t, got, 2)
	assert.Equal(t, map[string]string{"_source_": "stdout", "ip": "127.0.0.1", "time": "10/Aug/2017:14:57:51", "method": "POST",
		"url": "/PutData?Category=YunOsAccountOpLog", "request_time": "0.024", "request_length": "18204", "status": "200",
		"length": "37", "ref_url": "-", "browser": "aliyun-sdk-java"}, got[0].FieldMap())
	assert.Equal(t, map[string]string{"content": "not an access line"}, got[1].FieldMap(), "kept when it does not match")

	// FullMatch false finds the pattern inside the value; KeepSource keeps it.
	got, _ = run(t, `[{"type":"processor_regex","detail":{"SourceKey":"content","Regex":"level=(\\w+)","Keys":["level"],"FullMatch":false,"KeepSource":true}}]`,
		map[string]string{"content": "ts=1 level=warn msg=x"})
	assert.Equal(t, []map[string]string{{"content": "ts=1 level=warn msg=x", "level": "warn"}}, fields(got))
}

// The Logtail plugin docs' delimiter examples.
func TestSplit(t *testing.T) {
	keys := `["ip","time","method","url","request_time","request_length","status","length","ref_url","browser"]`
	got, _ := run(t, `[{"type":"processor_split_char","detail":{"SourceKey":"content","SplitSep":"|","SplitKeys":`+keys+`}}]`,
		map[string]string{"content": "127.0.0.1|10/Aug/2017:14:57:51 +0800|POST|PutData?Category=YunOsAccountOpLog|0.024|18204|200|37|-|aliyun-sdk-java"})
	assert.Equal(t, []map[string]string{{"ip": "127.0.0.1", "time": "10/Aug/2017:14:57:51 +0800", "method": "POST",
		"url": "PutData?Category=YunOsAccountOpLog", "request_time": "0.024", "request_length": "18204", "status": "200",
		"length": "37", "ref_url": "-", "browser": "aliyun-sdk-java"}}, fields(got))

	got, _ = run(t, `[{"type":"processor_split_char","detail":{"SourceKey":"content","SplitSep":",","QuoteFlag":true,"SplitKeys":["a","b","c"]}}]`,
		map[string]string{"content": `1,"two, ""quoted""",3`})
	assert.Equal(t, []map[string]string{{"a": "1", "b": `two, "quoted"`, "c": "3"}}, fields(got))

	got, reg := run(t, `[{"type":"processor_split_string","detail":{"SourceKey":"content","SplitSep":"||","SplitKeys":["a","b"],"ExpandOthers":true,"ExpandKeyPrefix":"x_"}}]`,
		map[string]string{"content": "1||2||3||4"})
	assert.Equal(t, []map[string]string{{"a": "1", "b": "2", "x_1": "3", "x_2": "4"}}, fields(got))
	assert.Equal(t, 1.0, failures(t, reg, "0:processor_split_string", "no_match"), "more columns than keys is counted")

	got, _ = run(t, `[{"type":"processor_split_string","detail":{"SourceKey":"content","SplitSep":"||","SplitKeys":["a"],"PreserveOthers":true}}]`,
		map[string]string{"content": "1||2||3"})
	assert.Equal(t, []map[string]string{{"a": "1", "_split_preserve_": "2||3"}}, fields(got))
}

// The Logtail plugin docs' filter example: JSON parsed, then kept only
// when ip and method match and brower does not.
func TestFilterAfterJSON(t *testing.T) {
	got, reg := run(t, `[
		{"type":"processor_json","detail":{"SourceKey":"content","KeepSource":false,"ExpandDepth":1,"ExpandConnector":""}},
		{"type":"processor_filter_regex","detail":{"Include":{"ip":"10\\..*","method":"POST"},"Exclude":{"brower":"aliyun.*"}}}]`,
		map[string]string{"content": `{"ip": "10.1.1.1", "method": "POST", "brower": "aliyun-sdk-java"}`},
		map[string]string{"content": `{"ip": "10.1.1.1", "method": "POST", "brower": "chrome"}`},
		map[string]string{"content": `{"ip": "192.168.1.1", "method": "POST", "brower": "aliyun-sls-ilogtail"}`})
	assert.Equal(t, []map[string]string{{"ip": "10.1.1.1", "method": "POST", "brower": "chrome"}}, fields(got))
	assert.Equal(t, 2.0, failures(t, reg, "1:processor_filter_regex", "filtered"))

	// All filtered: the batch is acked by the stage (checked in run).
	got, _ = run(t, `[{"type":"processor_filter_regex","detail":{"Include":{"level":"ERROR"}}}]`, map[string]string{"content": "x"})
	assert.Empty(t, got)
}

func TestAddDropRename(t *testing.T) {
	got, _ := run(t, `[
		{"type":"processor_add_fields","detail":{"Fields":{"env":"prod","content":"ignored"},"IgnoreIfExist":true}},
		{"type":"processor_rename","detail":{"SourceKeys":["content"],"DestKeys":["message"]}},
		{"type":"processor_drop","detail":{"DropKeys":["_source_"]}}]`,
		map[string]string{"content": "hello", "_source_": "stdout"})
	assert.Equal(t, []map[string]string{{"message": "hello", "env": "prod"}}, fields(got))
}

// Bad processors are refused with the path of the key and the fix; unknown
// detail keys are warnings.
func TestValidate(t *testing.T) {
	f := func(js, want string) {
		t.Helper()
		c := Config{Name: "c", Processors: processors(t, js)}
		_, err := c.Validate()
		require.Error(t, err, js)
		assert.Contains(t, err.Error(), want)
		_, err = NewStage(c, &pipelinetest.Recorder{}, Settings{})
		assert.Error(t, err)
	}
	f(`[{"type":"processor_grok","detail":{}}]`, `inputDetail.plugin.processors[0].type "processor_grok" is not supported: this agent runs processor_json, processor_regex`)
	f(`[{"type":"processor_regex","detail":{"SourceKey":"content","Regex":"(a)(b)","Keys":["a"]}}]`, "processors[0] (processor_regex).detail.Keys: the regex has 2 capture groups but 1 keys are given")
	f(`[{"type":"processor_regex","detail":{"SourceKey":"content","Regex":"(a","Keys":["a"]}}]`, "detail.Regex:")
	f(`[{"type":"processor_json","detail":{}}]`, "detail.SourceKey is empty")
	f(`[{"type":"processor_split_char","detail":{"SourceKey":"content","SplitSep":"||","SplitKeys":["a"]}}]`, "must be one character")
	f(`[{"type":"processor_filter_regex","detail":{"Include":{"a":"("}}}]`, "detail.Include.a:")
	f(`[{"type":"processor_json","detail":{"SourceKey":3}}]`, "processors[0].detail:")

	c := Config{Name: "c", Processors: processors(t, `[{"type":"processor_json","detail":{"sourcekey":"content","KeepSorce":false}}]`)}
	warnings, err := c.Validate()
	require.NoError(t, err, "keys match without regard to case")
	assert.Equal(t, []string{"inputDetail.plugin.processors[0].detail.KeepSorce: unknown key, ignored"}, warnings)
}
