package jsonline_test

import (
	"bufio"
	"bytes"
	"encoding/json"
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
