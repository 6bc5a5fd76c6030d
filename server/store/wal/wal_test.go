package wal

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
)

// FuzzWALRecord checks that a WAL record round-trips its write and that
// replaying arbitrary segment bytes never panics: it yields only records
// whose checksum matched.
func FuzzWALRecord(f *testing.F) {
	f.Add("status", "200", "topic", int64(1700000000), []byte{4, 0, 0, 0, 1, 2, 3, 4, 1, 2})
	f.Add("", "\xff", "", int64(-1), []byte{})
	f.Fuzz(func(t *testing.T, k, v, topic string, recv int64, garbage []byte) {
		g := protocol.LogGroup{Topic: topic, Logs: []protocol.Log{{Time: 1, Contents: []protocol.LogContent{{Key: k, Value: v}}}}}
		rec := AppendRecord(nil, 7, 3, recv, []protocol.LogGroup{g})
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "0000000000000000.wal"), append(rec, garbage...), 0o600))
		var got []Record
		end, err := Read(dir, 0, slog.New(slog.DiscardHandler), func(r Record) error {
			got = append(got, r)
			return nil
		})
		if err != nil {
			return // a checksummed but undecodable record in the garbage
		}
		require.GreaterOrEqual(t, end, int64(len(rec)))
		require.NotEmpty(t, got)
		require.Equal(t, int64(7), got[0].Logstore)
		require.Equal(t, 3, got[0].Shard)
		require.Equal(t, rec, got[0].Raw)
		require.Equal(t, recv, got[0].Received)
		require.Len(t, got[0].Groups, 1)
		require.Equal(t, topic, got[0].Groups[0].Topic)
		require.Equal(t, g.Logs[0].Contents, got[0].Groups[0].Logs[0].Contents)
	})
}
