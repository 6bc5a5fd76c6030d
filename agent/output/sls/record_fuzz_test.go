package sls

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
)

// FuzzDecodeRecord: disk buffer records are decoded after a restart; any
// bytes must decode or fail cleanly, and what decodes re-encodes to itself.
func FuzzDecodeRecord(f *testing.F) {
	p := payload{body: []byte("compressed"), rawSize: 100, ct: protocol.CompressLZ4, logs: 3, packID: "0123456789ABCDEF-1F"}
	f.Add(p.appendRecord(nil))
	f.Add([]byte{1, 2, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeRecord(b)
		if err != nil {
			return
		}
		require.True(t, p.ct.Valid())
		require.LessOrEqual(t, p.rawSize, protocol.MaxRawBodySize)
		if bytes.Equal(p.appendRecord(nil), b) {
			return
		}
		// Non-minimal varints decode too; the re-encoding must decode to
		// the same payload.
		again, err := decodeRecord(p.appendRecord(nil))
		require.NoError(t, err)
		require.Equal(t, p, again)
	})
}
