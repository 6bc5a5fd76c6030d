package jsonline_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/output/internal/jsonline"
	"github.com/sluicelog/sluice/agent/pipeline"
)

func TestAppendBatchDecodesWithEncodingJSON(t *testing.T) {
	b := pipeline.NewBatch()
	b.Topic = "top\"ic"
	b.AddTag("__path__", "/var/log/a.log")
	b.BeginEvent(1700000000, 5)
	b.AddField("content", []byte("line with \"quotes\", \\, tab\t, nl\n, ctl\x01, bad utf8 \xff, 中文, \u2028"))
	b.AddField("status", []byte("200"))
	b.EndEvent()
	b.BeginEvent(1700000001, 0)
	b.AddField("content", nil)
	b.EndEvent()

	out := jsonline.AppendBatch(nil, b, "10.0.0.1")
	sc := bufio.NewScanner(bytes.NewReader(out))
	var lines []map[string]any
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		lines = append(lines, m)
	}
	require.Len(t, lines, 2)
	want, _ := json.Marshal("line with \"quotes\", \\, tab\t, nl\n, ctl\x01, bad utf8 \xff, 中文, \u2028")
	var wantS string
	require.NoError(t, json.Unmarshal(want, &wantS))
	require.Equal(t, map[string]any{
		"__time__": 1700000000.0, "__time_ns__": 5.0, "__topic__": "top\"ic", "__source__": "10.0.0.1",
		"__tag__:__path__": "/var/log/a.log", "content": wantS, "status": "200",
	}, lines[0])
	require.Equal(t, map[string]any{
		"__time__": 1700000001.0, "__topic__": "top\"ic", "__source__": "10.0.0.1",
		"__tag__:__path__": "/var/log/a.log", "content": "",
	}, lines[1])
}

func FuzzAppendString(f *testing.F) {
	f.Add("plain")
	f.Add("\x00\xff\u2028\"\\")
	f.Fuzz(func(t *testing.T, s string) {
		out := jsonline.AppendString(nil, s)
		var got string
		require.NoError(t, json.Unmarshal(out, &got))
		want, _ := json.Marshal(s)
		var wantS string
		require.NoError(t, json.Unmarshal(want, &wantS))
		require.Equal(t, wantS, got)
	})
}

// TestFieldsNamedAsLineKeys: a JSON log's own __time__ (or __topic__, a
// tag's key...) is kept under __field__:, so each key appears once.
func TestFieldsNamedAsLineKeys(t *testing.T) {
	b := pipeline.NewBatch()
	b.Topic = "t"
	b.AddTag("pod", "p-1")
	b.BeginEvent(1700000000, 0)
	for _, k := range []string{"__time__", "__time_ns__", "__topic__", "__source__", "__tag__:pod", "__tag__:other", "__field__:x", "__x__", "msg"} {
		b.AddField(k, []byte("v"+k))
	}
	b.EndEvent()
	out := jsonline.AppendBatch(nil, b, "10.0.0.1")

	// Each key once: decode as a sequence of tokens, not into a map
	// (which would hide a repeated key).
	dec := json.NewDecoder(bytes.NewReader(out))
	_, err := dec.Token()
	require.NoError(t, err)
	seen := map[string]string{}
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		v, err := dec.Token()
		require.NoError(t, err)
		require.NotContains(t, seen, k, "key %q written twice in %s", k, out)
		seen[k.(string)] = fmt.Sprint(v)
	}
	require.Equal(t, map[string]string{
		"__time__": "1.7e+09", "__topic__": "t", "__source__": "10.0.0.1", "__tag__:pod": "p-1",
		"__field__:__time__": "v__time__", "__field__:__time_ns__": "v__time_ns__", "__field__:__topic__": "v__topic__",
		"__field__:__source__": "v__source__", "__field__:__tag__:pod": "v__tag__:pod", "__tag__:other": "v__tag__:other",
		"__field__:__field__:x": "v__field__:x", "__x__": "v__x__", "msg": "vmsg",
	}, seen)
}
