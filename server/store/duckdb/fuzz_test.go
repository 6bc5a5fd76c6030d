package duckdb

import (
	"log/slog"
	"os"
	"path/filepath"
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

// FuzzWALRecord checks that a WAL record round-trips its write and that
// replaying arbitrary segment bytes never panics: it yields only records
// whose checksum matched.
func FuzzWALRecord(f *testing.F) {
	f.Add("status", "200", "topic", int64(1700000000), []byte{4, 0, 0, 0, 1, 2, 3, 4, 1, 2})
	f.Add("", "\xff", "", int64(-1), []byte{})
	f.Fuzz(func(t *testing.T, k, v, topic string, recv int64, garbage []byte) {
		g := protocol.LogGroup{Topic: topic, Logs: []protocol.Log{{Time: 1, Contents: []protocol.LogContent{{Key: k, Value: v}}}}}
		rec := appendWALRecord(nil, 7, 3, recv, []protocol.LogGroup{g})
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "0000000000000000.wal"), append(rec, garbage...), 0o600))
		var got []walRecord
		end, err := readWAL(dir, 0, slog.New(slog.DiscardHandler), func(r walRecord) error {
			got = append(got, r)
			return nil
		})
		if err != nil {
			return // a checksummed but undecodable record in the garbage
		}
		require.GreaterOrEqual(t, end, int64(len(rec)))
		require.NotEmpty(t, got)
		require.Equal(t, int64(7), got[0].lsID)
		require.Equal(t, 3, got[0].shard)
		require.Equal(t, rec, got[0].raw)
		require.Equal(t, recv, got[0].received)
		require.Len(t, got[0].groups, 1)
		require.Equal(t, topic, got[0].groups[0].Topic)
		require.Equal(t, g.Logs[0].Contents, got[0].groups[0].Logs[0].Contents)
	})
}
