package protocol_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
)

// FuzzDecompress feeds arbitrary bodies, compress types and declared sizes
// to Decompress with a small limit: it must never panic, never return more
// than the limit, return exactly the declared size when it succeeds with
// one, and report failures as Log Service errors (400s).
func FuzzDecompress(f *testing.F) {
	raw := protocol.AppendLogGroup(nil, protocoltest.NginxLogGroup(2<<10))
	for _, ct := range allCompressions {
		c, err := protocol.AppendCompressed(nil, raw, ct)
		require.NoError(f, err)
		f.Add(c, uint8(ct), int32(len(raw)))
		f.Add(c, uint8(ct), int32(-1))
		f.Add(c[:len(c)/2], uint8(ct), int32(len(raw)))
	}
	f.Add([]byte{0x00}, uint8(protocol.CompressLZ4), int32(0))
	f.Add([]byte{0xf0, 0xff, 0xff, 0x00}, uint8(protocol.CompressLZ4), int32(4096))
	const limit = 64 << 10
	f.Fuzz(func(t *testing.T, body []byte, ct uint8, rawSize int32) {
		out, err := protocol.Decompress([]byte("x"), body, protocol.CompressType(ct), int(rawSize), limit)
		if err != nil {
			e := protocol.AsError(err)
			require.Equal(t, 400, e.HTTPStatus, "%v", err)
			require.Equal(t, "x", string(out), "failed decode must leave dst as it was")
			return
		}
		require.Equal(t, "x", string(out[:1]))
		out = out[1:]
		require.LessOrEqual(t, len(out), limit)
		if rawSize >= 0 {
			require.Len(t, out, int(rawSize))
		}
		// What decodes re-encodes and decodes to the same bytes.
		c, err := protocol.AppendCompressed(nil, out, protocol.CompressType(ct))
		require.NoError(t, err)
		again, err := protocol.Decompress(nil, c, protocol.CompressType(ct), len(out), limit)
		require.NoError(t, err)
		require.True(t, bytes.Equal(out, again))
	})
}
