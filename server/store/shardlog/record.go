package shardlog

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/sluicelog/sluice/protocol"
)

// A record is one write's log groups for one shard, in the framing of
// the embedded store's write-ahead log, so the bytes the WAL wrote are
// appended here unchanged:
//
//	u32 len(payload) | u32 crc32c(payload) | payload
//	payload: 0x00 | 0x01 | uvarint logstore | uvarint shard |
//	         varint received (unix ns) | LogGroupList entries
//
// (the leading 0x00 tells it from the WAL's older records, which started
// with a non-zero logstore id). The shard log adds a trailer:
//
//	u64 walEnd | u32 groups | u32 crc32c(walEnd, groups; seeded with the payload's crc)
//
// walEnd (the WAL position after the record) lets Recover cut the log
// back to what the store has made durable; groups lets the index be
// rebuilt from headers and trailers without parsing payloads.
const (
	HeaderSize  = 8
	trailerSize = 16

	payloadVersion = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// AppendRecord appends the framed record of one write to dst.
func AppendRecord(dst []byte, logstore int64, shard int, received int64, groups []protocol.LogGroup) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)
	dst = append(dst, 0, payloadVersion)
	dst = binary.AppendUvarint(dst, uint64(logstore))
	dst = binary.AppendUvarint(dst, uint64(shard))
	dst = binary.AppendVarint(dst, received)
	for i := range groups {
		dst = protocol.AppendLogGroupListEntry(dst, &groups[i])
	}
	payload := dst[start+HeaderSize:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, crcTable))
	return dst
}

// IsRecord reports whether a WAL payload is in this package's format
// (rather than the WAL's older one).
func IsRecord(payload []byte) bool {
	return len(payload) >= 2 && payload[0] == 0 && payload[1] == payloadVersion
}

// Payload is a decoded record payload's header; Groups holds the
// LogGroupList entries (tag, length, LogGroup), aliasing the payload.
type Payload struct {
	Logstore int64
	Shard    int
	Received int64 // unix ns
	Groups   []byte
}

var errBadPayload = errors.New("shard log: malformed record payload")

// ParsePayload decodes a payload's header.
func ParsePayload(p []byte) (Payload, error) {
	var r Payload
	if !IsRecord(p) {
		return r, errBadPayload
	}
	i := 2
	ls, n := binary.Uvarint(p[i:])
	if n <= 0 {
		return r, errBadPayload
	}
	i += n
	sh, n := binary.Uvarint(p[i:])
	if n <= 0 || sh > maxShard {
		return r, errBadPayload
	}
	i += n
	recv, n := binary.Varint(p[i:])
	if n <= 0 {
		return r, errBadPayload
	}
	i += n
	r.Logstore, r.Shard, r.Received, r.Groups = int64(ls), int(sh), recv, p[i:]
	return r, nil
}

// nextEntry splits the first LogGroupList entry (tag 1, length-delimited)
// off b.
func nextEntry(b []byte) (entry, rest []byte, err error) {
	if len(b) < 2 || b[0] != 0x0a {
		return nil, nil, errBadPayload
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || uint64(len(b)-1-k) < n {
		return nil, nil, errBadPayload
	}
	end := 1 + k + int(n)
	return b[:end], b[end:], nil
}

func appendTrailer(dst []byte, recCRC uint32, walEnd int64, groups int) []byte {
	var t [trailerSize]byte
	binary.LittleEndian.PutUint64(t[0:], uint64(walEnd))
	binary.LittleEndian.PutUint32(t[8:], uint32(groups))
	binary.LittleEndian.PutUint32(t[12:], crc32.Update(recCRC, crcTable, t[:12]))
	return append(dst, t[:]...)
}

// frame is a record's position and trailer, as found in a file.
type frame struct {
	size   int64 // header + payload + trailer
	crc    uint32
	walEnd int64
	groups int
}

// parseFrame reads the frame at the start of b (which holds at least the
// whole record when it is intact). ok is false for a short or torn
// record; the payload's checksum is checked only when verify is set.
func parseFrame(b []byte, verify bool) (f frame, ok bool) {
	if len(b) < HeaderSize {
		return f, false
	}
	n := int64(binary.LittleEndian.Uint32(b))
	f.crc = binary.LittleEndian.Uint32(b[4:])
	f.size = HeaderSize + n + trailerSize
	if n > maxRecord || int64(len(b)) < f.size {
		return f, false
	}
	t := b[HeaderSize+n : f.size]
	if !trailerOK(f.crc, t) {
		return f, false
	}
	if verify && crc32.Checksum(b[HeaderSize:HeaderSize+n], crcTable) != f.crc {
		return f, false
	}
	f.walEnd = int64(binary.LittleEndian.Uint64(t))
	f.groups = int(binary.LittleEndian.Uint32(t[8:]))
	return f, true
}

// trailerOK checks a trailer's checksum against the record's.
func trailerOK(recCRC uint32, t []byte) bool {
	return crc32.Update(recCRC, crcTable, t[:12]) == binary.LittleEndian.Uint32(t[12:])
}
