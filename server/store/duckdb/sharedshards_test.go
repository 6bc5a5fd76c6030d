package duckdb

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
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

// A merge frames runs of a shard's chunks with consecutive cursors as one
// row each (a gap, another shard or the size bound starts a new one); a
// row splits back into the commits' chunks, byte for byte, with their
// cursors and receive times; a row whose framing disagrees with it is
// refused.
func TestMergedChunkRows(t *testing.T) {
	dir := t.TempDir()
	var chunks []ShardChunk
	var data [][]byte
	paths := map[int64]string{}
	add := func(obj int64, shard int, first int64, groups int) {
		var raw []byte
		for i := range groups {
			g := protocol.LogGroup{Topic: fmt.Sprint(first + int64(i))}
			raw = protocol.AppendLogGroupListEntry(raw, &g)
		}
		z, err := protocol.AppendCompressed(binary.AppendUvarint(nil, uint64(len(raw))), raw, protocol.CompressZstd)
		require.NoError(t, err)
		p := filepath.Join(dir, fmt.Sprint(obj))
		require.NoError(t, os.WriteFile(p, append(make([]byte, 7), z...), 0o600)) // at an offset
		paths[obj] = p
		chunks = append(chunks, ShardChunk{Shard: shard, First: first, Groups: groups, Received: 1000 + obj, Object: obj, Off: 7, Len: int64(len(z))})
		data = append(data, z)
	}
	add(1, 0, 0, 3)
	add(2, 0, 3, 1)
	add(3, 0, 4, 2)
	add(4, 0, 10, 1) // a gap: cursors 6-9 are elsewhere
	add(5, 1, 11, 2)
	add(6, 1, 13, 1)

	runs := chunkRuns(chunks, 1<<20)
	require.Equal(t, []int{3, 1, 2}, []int{len(runs[0]), len(runs[1]), len(runs[2])})
	var lens []int
	for _, r := range chunkRuns(chunks, chunks[0].Len+chunks[1].Len) {
		lens = append(lens, len(r))
	}
	require.Equal(t, 2, lens[0], "the size bound")
	require.Equal(t, 1, lens[1], "the size bound")
	lens = lens[:0]
	for _, r := range chunkRuns(chunks, 1) {
		lens = append(lens, len(r))
	}
	require.Equal(t, []int{1, 1, 1, 1, 1, 1}, lens, "a chunk over the bound is a row of its own")

	out := filepath.Join(dir, "merged")
	rows, err := copyChunks(out, runs, func(obj int64) string { return paths[obj] }, 99)
	require.NoError(t, err)
	require.Len(t, rows, 3)
	require.Equal(t, ShardChunk{Shard: 0, First: 0, Groups: 6, Received: 1003, Object: 99, Off: 0, Len: rows[0].Len, Merged: true}, rows[0])
	require.Equal(t, rows[0].Len, rows[1].Off)
	merged, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, rows[2].Off+rows[2].Len, int64(len(merged)))
	k := 0
	for _, row := range rows {
		b := merged[row.Off : row.Off+row.Len]
		pieces, err := chunkPieces(row, b)
		require.NoError(t, err)
		for _, p := range pieces {
			ch := chunks[k]
			require.Equal(t, []int64{ch.First, int64(ch.Groups), ch.Received}, []int64{p.first, int64(p.groups), p.received})
			require.Equal(t, data[k], p.data, "the commit's chunk, unchanged")
			k++
		}
		bad := row
		bad.Groups++
		_, err = chunkPieces(bad, b)
		require.ErrorIs(t, err, errBadPiece, "more groups in the row than in its chunks")
		_, err = chunkPieces(row, b[:len(b)-1])
		require.ErrorIs(t, err, errBadPiece, "a truncated row")
	}
	require.Equal(t, len(chunks), k)
	plain, err := chunkPieces(chunks[0], data[0])
	require.NoError(t, err)
	require.Equal(t, []chunkPiece{{first: 0, groups: 3, received: 1001, data: data[0]}}, plain, "a commit's own chunk is one piece")
}
