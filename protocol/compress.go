package protocol

// Body compression: raw LZ4 blocks (github.com/pierrec/lz4/v4), zstd frames
// and zlib (github.com/klauspost/compress). Decoding is bounded: it never
// allocates more than the caller's limit, whatever the body or
// x-log-bodyrawsize claim, so a decompression bomb or a lying header costs
// at most `limit` bytes.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// lz4MaxRatio bounds how much a raw LZ4 block can expand: a match token
// plus length bytes of 255 each encode at most 255 bytes per input byte.
// A claimed raw size beyond it is a lie, refused before allocating.
const lz4MaxRatio = 255

// Pools of (de)compressors: each holds tables or windows worth reusing, and
// none starts goroutines (zstd runs with concurrency 1), so an instance
// dropped by the pool leaks nothing.
var (
	compressors = sync.Pool{New: func() any { return new(Compressor) }}
	zstdDecs    = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxWindow(16<<20))
		if err != nil { // unreachable: constant, valid options
			panic(err)
		}
		return d
	}}
	zlibReaders sync.Pool // of io.ReadCloser that implement zlib.Resetter
)

// Compressor compresses bodies, keeping its tables and encoders between
// calls. It is not safe for concurrent use; the zero value is ready. Hot
// loops (the agent's senders) keep one per goroutine: a sync.Pool is emptied
// by every GC, which at hundreds of MB/s means rebuilding encoders often.
type Compressor struct {
	lz4  lz4.Compressor
	zstd *zstd.Encoder
	zlib *zlib.Writer
}

// AppendCompressed appends src compressed with t to dst and returns the
// extended slice, using a pooled Compressor.
func AppendCompressed(dst, src []byte, t CompressType) ([]byte, error) {
	c := compressors.Get().(*Compressor)
	dst, err := c.Append(dst, src, t)
	compressors.Put(c)
	return dst, err
}

// Append appends src compressed with t to dst and returns the extended
// slice. CompressNone appends src unchanged. LZ4 output is a raw block (no
// frame, no size prefix: send the raw size in x-log-bodyrawsize); zstd a
// frame with the content size; deflate the zlib format.
func (c *Compressor) Append(dst, src []byte, t CompressType) ([]byte, error) {
	switch t {
	case CompressNone:
		return append(dst, src...), nil
	case CompressLZ4:
		n0 := len(dst)
		bound := lz4.CompressBlockBound(len(src))
		dst = grow(dst, bound)
		// With a destination of CompressBlockBound bytes the compressor always
		// writes a block (literals only when incompressible).
		n, err := c.lz4.CompressBlock(src, dst[n0:n0+bound])
		if err != nil {
			return dst[:n0], fmt.Errorf("lz4 compress: %w", err)
		}
		if n == 0 && len(src) > 0 {
			return dst[:n0], errors.New("lz4 compress: compressor wrote no block")
		}
		return dst[:n0+n], nil
	case CompressZstd:
		if c.zstd == nil {
			e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault),
				zstd.WithZeroFrames(true))
			if err != nil {
				return dst, fmt.Errorf("zstd encoder: %w", err)
			}
			c.zstd = e
		}
		return c.zstd.EncodeAll(src, dst), nil
	case CompressDeflate:
		buf := bytes.NewBuffer(dst)
		if c.zlib == nil {
			w, err := zlib.NewWriterLevel(buf, zlib.DefaultCompression)
			if err != nil {
				return dst, fmt.Errorf("deflate encoder: %w", err)
			}
			c.zlib = w
		} else {
			c.zlib.Reset(buf)
		}
		_, err := c.zlib.Write(src)
		if err == nil {
			err = c.zlib.Close()
		}
		if err != nil {
			return dst, fmt.Errorf("deflate compress: %w", err)
		}
		return buf.Bytes(), nil
	}
	return dst, fmt.Errorf("compress: unknown compress type %v", t)
}

// grow returns b with room for n more bytes beyond len(b) (length
// extended by n).
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// Decompress appends the decompression of src (compressed with t) to dst.
//
// rawSize is the declared uncompressed size (x-log-bodyrawsize), or -1 when
// not declared. LZ4 requires it (a raw block does not record its size); for
// zstd and deflate it is checked when given. limit caps the output
// (MaxRawBodySize when <= 0): decoding never allocates more than limit
// bytes beyond dst, and stops as soon as the output would exceed it.
//
// Errors are *Error: MissingBodyRawSize (lz4 without a size),
// PostBodyTooLarge (over limit), InvalidBodyRawSize (declared size is
// impossible or differs from the real one), PostBodyUncompressError
// (corrupt data), InvalidCompressType.
func Decompress(dst, src []byte, t CompressType, rawSize, limit int) ([]byte, error) {
	if limit <= 0 {
		limit = MaxRawBodySize
	}
	if rawSize > limit {
		return dst, Errorf(CodePostBodyTooLarge,
			"%s %d exceeds the %d-byte limit: send smaller batches", HeaderBodyRawSize, rawSize, limit)
	}
	switch t {
	case CompressNone:
		if len(src) > limit {
			return dst, Errorf(CodePostBodyTooLarge, "body of %d bytes exceeds the %d-byte limit: send smaller batches", len(src), limit)
		}
		if rawSize >= 0 && rawSize != len(src) {
			return dst, Errorf(CodeInvalidBodyRawSize, "%s %d differs from the uncompressed body size %d", HeaderBodyRawSize, rawSize, len(src))
		}
		return append(dst, src...), nil
	case CompressLZ4:
		return decompressLZ4(dst, src, rawSize)
	case CompressZstd:
		return decompressZstd(dst, src, rawSize, limit)
	case CompressDeflate:
		return decompressDeflate(dst, src, rawSize, limit)
	}
	return dst, Errorf(CodeInvalidCompressType, "unknown compress type %v", t)
}

func decompressLZ4(dst, src []byte, rawSize int) ([]byte, error) {
	if rawSize < 0 {
		return dst, Errorf(CodeMissingBodyRawSize,
			"missing %s: an lz4 body is a raw block and needs the uncompressed size", HeaderBodyRawSize)
	}
	if rawSize == 0 {
		// The empty block is one zero token byte; accept an empty body too.
		if len(src) > 1 || (len(src) == 1 && src[0] != 0) {
			return dst, Errorf(CodeInvalidBodyRawSize, "%s is 0 but the lz4 body holds data", HeaderBodyRawSize)
		}
		return dst, nil
	}
	if rawSize > lz4MaxRatio*len(src)+16 {
		return dst, Errorf(CodeInvalidBodyRawSize,
			"%s %d is impossible for a %d-byte lz4 block (max ratio %d)", HeaderBodyRawSize, rawSize, len(src), lz4MaxRatio)
	}
	n0 := len(dst)
	dst = grow(dst, rawSize)
	n, err := lz4.UncompressBlock(src, dst[n0:])
	if err != nil {
		return dst[:n0], Errorf(CodePostBodyUncompressError,
			"lz4 body does not decompress to %s %d bytes: %w", HeaderBodyRawSize, rawSize, err)
	}
	if n != rawSize {
		return dst[:n0], Errorf(CodeInvalidBodyRawSize,
			"%s %d differs from the decompressed size %d", HeaderBodyRawSize, rawSize, n)
	}
	return dst, nil
}

func decompressZstd(dst, src []byte, rawSize, limit int) ([]byte, error) {
	want := limit
	if rawSize >= 0 {
		want = rawSize
	}
	n0 := len(dst)
	// DecodeAll with WithDecodeAllCapLimit writes at most cap-len bytes, so
	// this allocation is the bound. One spare byte tells "exactly the
	// limit" from "more than the limit".
	if cap(dst)-n0 < want+1 {
		nb := make([]byte, n0, n0+want+1)
		copy(nb, dst)
		dst = nb
	}
	d := zstdDecs.Get().(*zstd.Decoder)
	out, err := d.DecodeAll(src, dst[:n0:n0+want+1])
	zstdDecs.Put(d)
	got := len(out) - n0
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded) || got > want:
		if rawSize >= 0 {
			return dst[:n0], Errorf(CodeInvalidBodyRawSize, "zstd body decompresses to more than %s %d", HeaderBodyRawSize, rawSize)
		}
		return dst[:n0], Errorf(CodePostBodyTooLarge, "zstd body decompresses to more than the %d-byte limit: send smaller batches", limit)
	case err != nil:
		return dst[:n0], Errorf(CodePostBodyUncompressError, "zstd body does not decompress: %w", err)
	case rawSize >= 0 && got != rawSize:
		return dst[:n0], Errorf(CodeInvalidBodyRawSize, "%s %d differs from the decompressed size %d", HeaderBodyRawSize, rawSize, got)
	}
	return out, nil
}

func decompressDeflate(dst, src []byte, rawSize, limit int) ([]byte, error) {
	want := limit
	if rawSize >= 0 {
		want = rawSize
	}
	var r io.ReadCloser
	var err error
	if v := zlibReaders.Get(); v != nil {
		r = v.(io.ReadCloser)
		err = r.(zlib.Resetter).Reset(bytes.NewReader(src), nil)
	} else {
		r, err = zlib.NewReader(bytes.NewReader(src))
	}
	if err != nil {
		return dst, Errorf(CodePostBodyUncompressError, "deflate (zlib) body does not decompress: %w", err)
	}
	defer zlibReaders.Put(r)
	n0 := len(dst)
	out := dst
	// Grow by doubling from a guess, never past want+1 bytes of output: the
	// spare byte tells "exactly want" from "more than want".
	step := min(want+1, max(4*len(src), 4<<10))
	for {
		got := len(out) - n0
		if got > want {
			if rawSize >= 0 {
				return dst[:n0], Errorf(CodeInvalidBodyRawSize, "deflate body decompresses to more than %s %d", HeaderBodyRawSize, rawSize)
			}
			return dst[:n0], Errorf(CodePostBodyTooLarge, "deflate body decompresses to more than the %d-byte limit: send smaller batches", limit)
		}
		if len(out) == cap(out) {
			size := min(want+1, max(step, 2*(cap(out)-n0)))
			nb := make([]byte, len(out), n0+size)
			copy(nb, out)
			out = nb
		}
		n, rerr := r.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return dst[:n0], Errorf(CodePostBodyUncompressError, "deflate (zlib) body does not decompress: %w", rerr)
		}
	}
	if got := len(out) - n0; got > want && rawSize < 0 {
		return dst[:n0], Errorf(CodePostBodyTooLarge, "deflate body decompresses to more than the %d-byte limit: send smaller batches", limit)
	} else if rawSize >= 0 && got != rawSize {
		return dst[:n0], Errorf(CodeInvalidBodyRawSize, "%s %d differs from the decompressed size %d", HeaderBodyRawSize, rawSize, got)
	}
	return out, nil
}
