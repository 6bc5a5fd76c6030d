package protocol

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// Wire tags (field number << 3 | wire type) of the sls messages.
const (
	tagLogTime     = 1<<3 | wireVarint
	tagLogContents = 2<<3 | wireBytes
	tagLogValues   = 3<<3 | wireBytes
	tagLogTimeNs   = 4<<3 | wireFixed32

	tagKVKey   = 1<<3 | wireBytes // LogContent.Key, LogTag.Key
	tagKVValue = 2<<3 | wireBytes // LogContent.Value, LogTag.Value

	tagGroupLogs        = 1<<3 | wireBytes
	tagGroupCategory    = 2<<3 | wireBytes
	tagGroupTopic       = 3<<3 | wireBytes
	tagGroupSource      = 4<<3 | wireBytes
	tagGroupMachineUUID = 5<<3 | wireBytes
	tagGroupLogTags     = 6<<3 | wireBytes

	tagListGroups = 1<<3 | wireBytes // LogGroupList.LogGroups, SlsLogPackageList.packages

	tagPackageData           = 1<<3 | wireBytes
	tagPackageUncompressSize = 2<<3 | wireVarint
	tagPackageCompressType   = 3<<3 | wireVarint
)

const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5
)

// KeyValue is satisfied by any struct type made of exactly `Key, Value
// string`, such as LogContent, LogTag or the agent's pipeline.Field, so the
// generic encoders below take those slices without conversion.
type KeyValue interface {
	~struct{ Key, Value string }
}

// varintLen is the encoded size of v.
func varintLen(v uint64) int {
	// (bits*9+64)/64 == ceil(bits/7) for bits in 1..64, and 1 for v==0.
	return (bits.Len64(v|1)*9 + 64) / 64
}

// putVarint writes v at b[i:] (which must have room) and returns the index
// after it.
func putVarint(b []byte, i int, v uint64) int {
	for v >= 0x80 {
		b[i] = byte(v) | 0x80
		v >>= 7
		i++
	}
	b[i] = byte(v)
	return i + 1
}

// putString writes a length-delimited field: tag, length, bytes.
func putString(b []byte, i int, tag byte, s string) int {
	b[i] = tag
	i = putVarint(b, i+1, uint64(len(s)))
	return i + copy(b[i:], s)
}

// kvSize is the encoded size of a LogContent/LogTag message body.
func kvSize(k, v string) int {
	return 2 + varintLen(uint64(len(k))) + len(k) + varintLen(uint64(len(v))) + len(v)
}

// fieldSize is the size of a length-delimited field with a one-byte tag
// whose payload is n bytes.
func fieldSize(n int) int { return 1 + varintLen(uint64(n)) + n }

// logBodySize is the encoded size of a Log message body.
func logBodySize[KV KeyValue](sec uint32, hasNs bool, contents []KV, values []string) int {
	n := 1 + varintLen(uint64(sec))
	for i := range contents {
		kv := LogContent(contents[i])
		n += fieldSize(kvSize(kv.Key, kv.Value))
	}
	for _, v := range values {
		n += fieldSize(len(v))
	}
	if hasNs {
		n += 5
	}
	return n
}

// appendLog writes one LogGroup.Logs entry (tag, length, Log body). It grows
// dst once and then writes by index: about twice as fast as appending piece
// by piece.
func appendLog[KV KeyValue](dst []byte, sec, nsec uint32, hasNs bool, contents []KV, values []string) []byte {
	body := logBodySize(sec, hasNs, contents, values)
	total := fieldSize(body)
	i := len(dst)
	dst = slices.Grow(dst, total)[:i+total]
	dst[i] = tagGroupLogs
	i = putVarint(dst, i+1, uint64(body))
	dst[i] = tagLogTime
	i = putVarint(dst, i+1, uint64(sec))
	for j := range contents {
		kv := LogContent(contents[j])
		dst[i] = tagLogContents
		i = putVarint(dst, i+1, uint64(kvSize(kv.Key, kv.Value)))
		i = putString(dst, i, tagKVKey, kv.Key)
		i = putString(dst, i, tagKVValue, kv.Value)
	}
	for _, v := range values {
		i = putString(dst, i, tagLogValues, v)
	}
	if hasNs {
		dst[i] = tagLogTimeNs
		binary.LittleEndian.PutUint32(dst[i+1:], nsec)
	}
	return dst
}

// AppendLog appends l to dst as one entry of a LogGroup's Logs field.
//
// A LogGroup's encoding is the concatenation of AppendLog for each log
// followed by AppendLogGroupMeta, so a sender can encode logs one at a time
// as they arrive.
func AppendLog(dst []byte, l *Log) []byte {
	return appendLog(dst, l.Time, l.TimeNs, l.HasTimeNs, l.Contents, l.Values)
}

// AppendLogKV is AppendLog for callers that keep contents in their own
// key/value type (e.g. the agent's pipeline.Field): it encodes a Log with the
// given time and contents without building a Log first.
func AppendLogKV[KV KeyValue](dst []byte, sec, nsec uint32, hasNs bool, contents []KV) []byte {
	return appendLog(dst, sec, nsec, hasNs, contents, nil)
}

// LogSize is the number of bytes AppendLog adds for l: what one more log
// adds to an encoded LogGroup. Batchers use it to cut groups at a size limit.
func LogSize(l *Log) int {
	return fieldSize(logBodySize(l.Time, l.HasTimeNs, l.Contents, l.Values))
}

// LogKVSize is the number of bytes AppendLogKV adds for the same arguments.
func LogKVSize[KV KeyValue](sec uint32, hasNs bool, contents []KV) int {
	return fieldSize(logBodySize(sec, hasNs, contents, nil))
}

// AppendLogGroupMeta appends every LogGroup field except Logs: Category,
// Topic, Source and MachineUUID when non-empty, then LogTags.
func AppendLogGroupMeta(dst []byte, g *LogGroup) []byte {
	return appendGroupMeta(dst, g.Category, g.Topic, g.Source, g.MachineUUID, g.LogTags)
}

// AppendLogGroupMetaKV is AppendLogGroupMeta for callers that keep tags in
// their own key/value type.
func AppendLogGroupMetaKV[KV KeyValue](dst []byte, category, topic, source, machineUUID string, tags []KV) []byte {
	return appendGroupMeta(dst, category, topic, source, machineUUID, tags)
}

func appendGroupMeta[KV KeyValue](dst []byte, category, topic, source, machineUUID string, tags []KV) []byte {
	n := groupMetaSize(category, topic, source, machineUUID, tags)
	i := len(dst)
	dst = slices.Grow(dst, n)[:i+n]
	if category != "" {
		i = putString(dst, i, tagGroupCategory, category)
	}
	if topic != "" {
		i = putString(dst, i, tagGroupTopic, topic)
	}
	if source != "" {
		i = putString(dst, i, tagGroupSource, source)
	}
	if machineUUID != "" {
		i = putString(dst, i, tagGroupMachineUUID, machineUUID)
	}
	for j := range tags {
		t := LogTag(tags[j])
		dst[i] = tagGroupLogTags
		i = putVarint(dst, i+1, uint64(kvSize(t.Key, t.Value)))
		i = putString(dst, i, tagKVKey, t.Key)
		i = putString(dst, i, tagKVValue, t.Value)
	}
	return dst
}

func optStringSize(s string) int {
	if s == "" {
		return 0
	}
	return fieldSize(len(s))
}

func groupMetaSize[KV KeyValue](category, topic, source, machineUUID string, tags []KV) int {
	n := optStringSize(category) + optStringSize(topic) + optStringSize(source) + optStringSize(machineUUID)
	for j := range tags {
		t := LogTag(tags[j])
		n += fieldSize(kvSize(t.Key, t.Value))
	}
	return n
}

// LogGroupMetaSize is the number of bytes AppendLogGroupMeta adds for g.
func LogGroupMetaSize(g *LogGroup) int {
	return groupMetaSize(g.Category, g.Topic, g.Source, g.MachineUUID, g.LogTags)
}

// AppendLogGroup appends the protobuf encoding of g to dst. The result is
// byte-identical to the Go SDK's proto.Marshal of the equivalent sls.LogGroup
// (with nil for empty optional strings).
func AppendLogGroup(dst []byte, g *LogGroup) []byte {
	for i := range g.Logs {
		dst = AppendLog(dst, &g.Logs[i])
	}
	return AppendLogGroupMeta(dst, g)
}

// LogGroupSize is len(AppendLogGroup(nil, g)), computed without encoding.
func LogGroupSize(g *LogGroup) int {
	n := LogGroupMetaSize(g)
	for i := range g.Logs {
		n += LogSize(&g.Logs[i])
	}
	return n
}

// AppendLogGroupListEntry appends g as one entry of a LogGroupList (tag,
// length, LogGroup), so a response can be streamed group by group.
func AppendLogGroupListEntry(dst []byte, g *LogGroup) []byte {
	n := LogGroupSize(g)
	dst = slices.Grow(dst, fieldSize(n))
	dst = append(dst, tagListGroups)
	dst = binary.AppendUvarint(dst, uint64(n))
	return AppendLogGroup(dst, g)
}

// AppendLogGroupList appends the protobuf encoding of gl to dst.
func AppendLogGroupList(dst []byte, gl *LogGroupList) []byte {
	for i := range gl.LogGroups {
		dst = AppendLogGroupListEntry(dst, &gl.LogGroups[i])
	}
	return dst
}

// LogGroupListSize is len(AppendLogGroupList(nil, gl)).
func LogGroupListSize(gl *LogGroupList) int {
	n := 0
	for i := range gl.LogGroups {
		n += fieldSize(LogGroupSize(&gl.LogGroups[i]))
	}
	return n
}
