package duckdb

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
)

// A chunk decompresses to its entries, its output sized by its recorded
// size (an empty chunk included); garbage is refused.
func TestDecompressChunk(t *testing.T) {
	g := protocol.LogGroup{Topic: "t", Logs: []protocol.Log{{Time: 1, Contents: []protocol.LogContent{{Key: "k", Value: "v"}}}}}
	var raw []byte
	for range 100 {
		raw = protocol.AppendLogGroupListEntry(raw, &g)
	}
	var big []byte
	for range 200 {
		big = append(big, raw...)
	}
	for _, in := range [][]byte{raw, nil, big} {
		z, err := protocol.AppendCompressed(binary.AppendUvarint(nil, uint64(len(in))), in, protocol.CompressZstd)
		require.NoError(t, err)
		out, err := decompressChunk(z)
		require.NoError(t, err)
		require.Equal(t, len(in), len(out))
		require.Equal(t, len(in), cap(out)-1, "the output is sized by the chunk, not the limit")
	}
	_, err := decompressChunk([]byte("not zstd"))
	require.Error(t, err)
}
