package protocol_test

import (
	"bytes"
	"compress/zlib"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
)

var allCompressions = []protocol.CompressType{protocol.CompressNone, protocol.CompressLZ4, protocol.CompressZstd, protocol.CompressDeflate}

func testBodies() map[string][]byte {
	r := rand.New(rand.NewPCG(9, 9))
	random := make([]byte, 50_000)
	for i := range random {
		random[i] = byte(r.IntN(256))
	}
	return map[string][]byte{
		"empty":  {},
		"byte":   {'x'},
		"nginx":  protocol.AppendLogGroup(nil, protocoltest.NginxLogGroup(512<<10)),
		"random": random, // incompressible: lz4 must still emit a valid block
		"zeros":  make([]byte, 1<<20),
	}
}

func TestCompressRoundTrip(t *testing.T) {
	for name, raw := range testBodies() {
		for _, ct := range allCompressions {
			prefix := []byte("keep")
			c, err := protocol.AppendCompressed(bytes.Clone(prefix), raw, ct)
			require.NoError(t, err, "%s %v", name, ct)
			require.Equal(t, prefix, c[:len(prefix)], "AppendCompressed must append")
			c = c[len(prefix):]
			got, err := protocol.Decompress([]byte("pre"), c, ct, len(raw), 0)
			require.NoError(t, err, "%s %v", name, ct)
			require.Equal(t, "pre", string(got[:3]))
			require.True(t, bytes.Equal(raw, got[3:]), "%s %v: round trip differs", name, ct)
			if ct != protocol.CompressLZ4 {
				got, err = protocol.Decompress(nil, c, ct, -1, 0)
				require.NoError(t, err, "%s %v unknown size", name, ct)
				require.True(t, bytes.Equal(raw, got))
			}
		}
	}
}

// TestDecompressOtherEncoders: bodies made by the libraries clients use
// (pierrec lz4 as the Go SDK and LoongCollector's liblz4 do, standard
// library zlib as Python/Java, zstd) decode.
func TestDecompressOtherEncoders(t *testing.T) {
	raw := protocol.AppendLogGroup(nil, protocoltest.NginxLogGroup(64<<10))

	lz := make([]byte, lz4.CompressBlockBound(len(raw)))
	n, err := lz4.CompressBlock(raw, lz, nil)
	require.NoError(t, err)
	got, err := protocol.Decompress(nil, lz[:n], protocol.CompressLZ4, len(raw), 0)
	require.NoError(t, err)
	require.Equal(t, raw, got)

	var zb bytes.Buffer
	zw := zlib.NewWriter(&zb)
	_, _ = zw.Write(raw)
	require.NoError(t, zw.Close())
	got, err = protocol.Decompress(nil, zb.Bytes(), protocol.CompressDeflate, len(raw), 0)
	require.NoError(t, err)
	require.Equal(t, raw, got)

	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	require.NoError(t, err)
	zs := enc.EncodeAll(raw, nil)
	require.NoError(t, enc.Close())
	got, err = protocol.Decompress(nil, zs, protocol.CompressZstd, len(raw), 0)
	require.NoError(t, err)
	require.Equal(t, raw, got)
}

func TestDecompressRejects(t *testing.T) {
	raw := protocol.AppendLogGroup(nil, protocoltest.NginxLogGroup(64<<10))
	comp := map[protocol.CompressType][]byte{}
	for _, ct := range allCompressions {
		c, err := protocol.AppendCompressed(nil, raw, ct)
		require.NoError(t, err)
		comp[ct] = c
	}
	for _, ct := range allCompressions {
		c := comp[ct]
		// Declared size smaller or larger than the truth.
		for _, size := range []int{len(raw) - 1, len(raw) + 1} {
			_, err := protocol.Decompress(nil, c, ct, size, 0)
			require.Error(t, err, "%v size %d", ct, size)
			code := protocol.CodeOf(err)
			require.Contains(t, []protocol.ErrorCode{protocol.CodeInvalidBodyRawSize, protocol.CodePostBodyUncompressError}, code, "%v: %v", ct, err)
		}
		// Declared size over the limit: refused before any work.
		_, err := protocol.Decompress(nil, c, ct, len(raw), len(raw)-1)
		require.Equal(t, protocol.CodePostBodyTooLarge, protocol.CodeOf(err), "%v", ct)
		if ct == protocol.CompressNone {
			continue
		}
		// Real size over the limit with no declared size.
		if ct != protocol.CompressLZ4 {
			_, err = protocol.Decompress(nil, c, ct, -1, len(raw)-1)
			require.Equal(t, protocol.CodePostBodyTooLarge, protocol.CodeOf(err), "%v", ct)
		}
		// Corruption.
		bad := bytes.Clone(c)
		for i := len(bad) / 3; i < len(bad)/3+16; i++ {
			bad[i] ^= 0x5a
		}
		_, err = protocol.Decompress(nil, bad, ct, len(raw), 0)
		require.Error(t, err, "%v corrupt", ct)
		// Truncation.
		_, err = protocol.Decompress(nil, c[:len(c)/2], ct, len(raw), 0)
		require.Error(t, err, "%v truncated", ct)
	}

	_, err := protocol.Decompress(nil, comp[protocol.CompressLZ4], protocol.CompressLZ4, -1, 0)
	require.Equal(t, protocol.CodeMissingBodyRawSize, protocol.CodeOf(err))

	// A tiny lz4 body claiming 10 MB is refused without allocating 10 MB.
	_, err = protocol.Decompress(nil, []byte{0x10, 'a'}, protocol.CompressLZ4, protocol.MaxRawBodySize, 0)
	require.Equal(t, protocol.CodeInvalidBodyRawSize, protocol.CodeOf(err))

	_, err = protocol.Decompress(nil, []byte{1}, protocol.CompressType(9), 1, 0)
	require.Equal(t, protocol.CodeInvalidCompressType, protocol.CodeOf(err))
}

// TestDecompressBombBounded: 256 MiB of zeros compresses to a few KiB;
// decoding with a 1 MiB limit must fail and allocate about the limit, not
// the bomb.
func TestDecompressBombBounded(t *testing.T) {
	zeros := make([]byte, 256<<20)
	bombs := map[protocol.CompressType][]byte{}
	for _, ct := range []protocol.CompressType{protocol.CompressZstd, protocol.CompressDeflate} {
		c, err := protocol.AppendCompressed(nil, zeros, ct)
		require.NoError(t, err)
		bombs[ct] = c
	}
	// A zstd frame without the content size in its header (streamed), so
	// the decoder cannot refuse up front.
	var streamed bytes.Buffer
	w, err := zstd.NewWriter(&streamed)
	require.NoError(t, err)
	for range 256 {
		_, _ = w.Write(zeros[:1<<20])
	}
	require.NoError(t, w.Close())
	zeros = nil
	runtime.GC()

	const limit = 1 << 20
	check := func(name string, ct protocol.CompressType, body []byte, rawSize int) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := protocol.Decompress(nil, body, ct, rawSize, limit)
		runtime.ReadMemStats(&after)
		require.Error(t, err, name)
		alloc := after.TotalAlloc - before.TotalAlloc
		require.Less(t, alloc, uint64(8*limit), "%s: allocated %d bytes decoding a bomb with a %d limit", name, alloc, limit)
	}
	for ct, c := range bombs {
		check(ct.String(), ct, c, -1)
		check(ct.String()+" lying size", ct, c, 100)
	}
	check("zstd streamed", protocol.CompressZstd, streamed.Bytes(), -1)
}

func TestParseCompressTypeRoundTrip(t *testing.T) {
	for _, ct := range allCompressions {
		got, err := protocol.ParseCompressType(ct.HeaderValue())
		require.NoError(t, err)
		require.Equal(t, ct, got)
	}
}
