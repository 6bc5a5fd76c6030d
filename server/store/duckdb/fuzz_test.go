package duckdb

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
)

// FuzzContents checks that the __contents__ encoding round-trips any keys
// and values, and that decoding arbitrary bytes fails cleanly.
func FuzzContents(f *testing.F) {
	f.Add("status", "200", "", "\xff\x00", []byte{2, 1, 'a', 1, 'b'})
	f.Add("", "", "k", "日志", []byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, garbage []byte) {
		in := []protocol.LogContent{{Key: k1, Value: v1}, {Key: k2, Value: v2}}
		blob := appendContents(nil, in)
		var out []protocol.LogContent
		require.NoError(t, decodeContents(blob, func(k, v string) { out = append(out, protocol.LogContent{Key: k, Value: v}) }))
		require.Equal(t, in, out)
		_ = decodeContents(garbage, func(string, string) {})
	})
}

// FuzzTags checks that tags survive the JSON __tags__ column (invalid
// UTF-8 is replaced, as documented) and that decoding never panics.
func FuzzTags(f *testing.F) {
	f.Add("__path__", "/var/log/a.log", `{"a":1}`)
	f.Add("k\"", "\xff", `{`)
	f.Fuzz(func(t *testing.T, k, v, garbage string) {
		tags, err := decodeTags(encodeTags([]protocol.LogTag{{Key: k, Value: v}}))
		require.NoError(t, err)
		require.Equal(t, []protocol.LogTag{{Key: validUTF8(k), Value: validUTF8(v)}}, tags)
		_, _ = decodeTags(garbage)
	})
}
