package protocol

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
)

// CompressType is a body compression: the x-log-compresstype header and the
// SlsLogPackage compress_type enum (LoongCollector's SlsCompressType).
type CompressType int32

// The enum values are those of LoongCollector's sls_logs.proto.
const (
	CompressNone    CompressType = 0
	CompressDeflate CompressType = 1 // zlib format (RFC 1950), not raw deflate
	CompressLZ4     CompressType = 2 // raw LZ4 block: no frame, no size prefix
	CompressZstd    CompressType = 3 // zstd frame
)

// ParseCompressType maps an x-log-compresstype header value to a
// CompressType. An empty value means no compression. Names are matched
// case-insensitively. Unknown names return an InvalidCompressType error.
func ParseCompressType(name string) (CompressType, error) {
	switch {
	case name == "":
		return CompressNone, nil
	case strings.EqualFold(name, "lz4"):
		return CompressLZ4, nil
	case strings.EqualFold(name, "deflate"):
		return CompressDeflate, nil
	case strings.EqualFold(name, "zstd"):
		return CompressZstd, nil
	}
	return 0, Errorf(CodeInvalidCompressType,
		"unsupported %s %q: use lz4, zstd or deflate, or omit the header for an uncompressed body", HeaderCompressType, name)
}

// HeaderValue is the x-log-compresstype value for t; "" for CompressNone
// (send no header) and for invalid values.
func (t CompressType) HeaderValue() string {
	switch t {
	case CompressLZ4:
		return "lz4"
	case CompressDeflate:
		return "deflate"
	case CompressZstd:
		return "zstd"
	}
	return ""
}

// String is the header name, "none" for CompressNone.
func (t CompressType) String() string {
	if t == CompressNone {
		return "none"
	}
	if v := t.HeaderValue(); v != "" {
		return v
	}
	return "CompressType(" + strconv.Itoa(int(t)) + ")"
}

// Valid reports whether t is one of the four defined values.
func (t CompressType) Valid() bool { return t >= CompressNone && t <= CompressZstd }

// SlsLogPackage is one package of an `x-log-mode: batch_group` request
// body: a (usually compressed) serialized LogGroup.
type SlsLogPackage struct {
	// Data aliases the decoded buffer (see the package documentation).
	Data []byte
	// UncompressSize is the size of Data once decompressed; meaningful when
	// HasUncompressSize.
	UncompressSize    int32
	HasUncompressSize bool
	// CompressType is LoongCollector's extension field 3; meaningful when
	// HasCompressType. The Go SDK never sets it.
	CompressType    CompressType
	HasCompressType bool
}

// Compression returns the package's compress type when the package states
// one, else def (the request's x-log-compresstype).
func (p *SlsLogPackage) Compression(def CompressType) CompressType {
	if p.HasCompressType {
		return p.CompressType
	}
	return def
}

// SlsLogPackageList is the body of an `x-log-mode: batch_group` request.
type SlsLogPackageList struct {
	Packages []SlsLogPackage
}

// Reset empties p.
func (p *SlsLogPackage) Reset() { *p = SlsLogPackage{} }

// Reset empties pl for reuse, keeping capacity.
func (pl *SlsLogPackageList) Reset() { pl.Packages = pl.Packages[:0] }

func packageBodySize(p *SlsLogPackage) int {
	n := fieldSize(len(p.Data))
	if p.HasUncompressSize {
		// int32 is sign-extended to 64 bits on the wire, as in every protobuf
		// implementation.
		n += 1 + varintLen(uint64(int64(p.UncompressSize)))
	}
	if p.HasCompressType {
		n += 1 + varintLen(uint64(int64(p.CompressType)))
	}
	return n
}

// AppendSlsLogPackage appends the protobuf encoding of p (the message body,
// without a list tag) to dst.
func AppendSlsLogPackage(dst []byte, p *SlsLogPackage) []byte {
	dst = slices.Grow(dst, packageBodySize(p))
	dst = append(dst, tagPackageData)
	dst = binary.AppendUvarint(dst, uint64(len(p.Data)))
	dst = append(dst, p.Data...)
	if p.HasUncompressSize {
		dst = append(dst, tagPackageUncompressSize)
		dst = binary.AppendUvarint(dst, uint64(int64(p.UncompressSize)))
	}
	if p.HasCompressType {
		dst = append(dst, tagPackageCompressType)
		dst = binary.AppendUvarint(dst, uint64(int64(p.CompressType)))
	}
	return dst
}

// AppendSlsLogPackageList appends the protobuf encoding of pl to dst.
func AppendSlsLogPackageList(dst []byte, pl *SlsLogPackageList) []byte {
	for i := range pl.Packages {
		p := &pl.Packages[i]
		dst = append(dst, tagListGroups)
		dst = binary.AppendUvarint(dst, uint64(packageBodySize(p)))
		dst = AppendSlsLogPackage(dst, p)
	}
	return dst
}
