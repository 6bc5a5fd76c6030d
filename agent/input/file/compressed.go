package file

import (
	"bufio"
	"compress/bzip2"
	"errors"
	"io"
	"math"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// codec is a compression format of rotated files, known by its suffix.
type codec struct {
	suffix string
	// open returns a decompressor of r; nil when the format cannot be read
	// (the file is recognised as compressed, never tailed as text).
	open func(r io.Reader) (io.ReadCloser, error)
}

// codecs: what logrotate's compresscmd is usually set to. .xz, .zip and .Z
// are known but not read: no well-kept Go decoder is in the module graph.
var codecs = []codec{
	{".gz", func(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) }},
	{".zst", func(r io.Reader) (io.ReadCloser, error) {
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}},
	{".bz2", func(r io.Reader) (io.ReadCloser, error) { return io.NopCloser(bzip2.NewReader(r)), nil }},
	{".lz4", func(r io.Reader) (io.ReadCloser, error) { return io.NopCloser(lz4.NewReader(r)), nil }},
	{".xz", nil},
	{".zip", nil},
	{".Z", nil},
}

// compression returns the codec of a compressed file's name, nil for other
// files.
func compression(name string) *codec {
	for i := range codecs {
		if strings.HasSuffix(name, codecs[i].suffix) {
			return &codecs[i]
		}
	}
	return nil
}

// zsource reads a compressed file as if it were the uncompressed one, for
// the reader's ReadAt at increasing offsets: it decompresses forward,
// skipping to a later offset and starting over for an earlier one (only a
// failed batch rewinds). Written once by logrotate, such a file does not
// change; its size is known once the end was reached.
type zsource struct {
	fd    *os.File
	codec *codec
	r     io.ReadCloser
	pos   int64 // uncompressed offset of r
	end   int64 // uncompressed size, -1 until the end was read
	err   error // sticky decompression error: corrupt
	short bool  // the last read found the file cut short
}

func newZSource(fd *os.File, c *codec) *zsource {
	return &zsource{fd: fd, codec: c, end: -1}
}

// size is the uncompressed size, or MaxInt64 while it is not known.
func (z *zsource) size() int64 {
	if z.end < 0 {
		return math.MaxInt64
	}
	return z.end
}

func (z *zsource) reset() error {
	if z.r != nil {
		_ = z.r.Close()
		z.r = nil
	}
	z.pos, z.err, z.short = 0, nil, false
	r, err := z.codec.open(bufio.NewReaderSize(io.NewSectionReader(z.fd, 0, math.MaxInt64), 64<<10))
	if err != nil {
		return err
	}
	z.r = r
	return nil
}

// ReadAt reads uncompressed bytes at off. A decompression error (a file
// cut short while being written, or corrupt) ends the content there: what
// could be decompressed is read, and io.EOF returned.
func (z *zsource) ReadAt(p []byte, off int64) (int, error) {
	if z.err != nil {
		return 0, io.EOF
	}
	if z.r == nil || off < z.pos {
		if err := z.reset(); err != nil {
			z.err = err
			return 0, io.EOF
		}
	}
	if z.end >= 0 && off >= z.end {
		return 0, io.EOF
	}
	if off > z.pos {
		n, err := io.CopyN(io.Discard, z.r, off-z.pos)
		z.pos += n
		if err != nil {
			z.stop(err)
			return 0, io.EOF
		}
	}
	n, err := io.ReadFull(z.r, p)
	z.pos += int64(n)
	if err != nil {
		z.stop(err)
		return n, io.EOF
	}
	return n, nil
}

func (z *zsource) stop(err error) {
	if errors.Is(err, io.EOF) {
		z.end = z.pos
		return
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// Cut short: still being written, or truncated. Not the end for
		// good: the next read starts over and may get further.
		_ = z.r.Close()
		z.r = nil
		z.short = true
		return
	}
	z.err = err
}

// problem says why the file could not be read to its proper end, "" when
// it was (or still may be).
func (z *zsource) problem() string {
	switch {
	case z.end >= 0:
		return ""
	case z.err != nil:
		return "corrupt: " + z.err.Error()
	case z.short:
		return "cut short"
	}
	return ""
}

// close releases the decompressor (not the descriptor).
func (z *zsource) close() {
	if z.r != nil {
		_ = z.r.Close()
		z.r = nil
	}
}
