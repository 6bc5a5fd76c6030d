// Package protocol is the Log Service wire format shared by sluice-agent,
// sluice-server and sluice-controller: the LogGroup protobuf messages, the
// service's error codes and its HTTP header names, body compression
// (compress.go: AppendCompressed, Decompress — bounded) and request signing
// and verification (sign.go: Signer, VerifyRequest, CheckClockSkew). See
// docs/log-service-api.md (sections 1-3) for the facts it
// implements.
//
// # Protobuf codec
//
// The messages are proto2, package sls, and the encoding is byte-identical to
// what github.com/aliyun/aliyun-log-go-sdk (gogo protobuf) produces for the
// same values: fields in field-number order, required fields always written,
// optional strings only when non-empty. The codec is written by hand rather
// than generated or built on easyproto because it is the hot path of both the
// agent (encode) and the server (decode) and the benchmarks in
// codec_bench_test.go measured it at 2-6x their throughput, with zero
// allocations per operation in steady state (figures in docs at the top of
// that file). Decoding is a few hundred lines of varint and length checks; it
// is fuzzed against the SDK's decoder (FuzzLogGroupDifferential).
//
// Encoders append to a caller's []byte and never fail. Decoders fill a
// caller-owned value that can be reused: Unmarshal resets it, keeping the
// capacity of every slice, so decoding into a value that has seen a similar
// message before allocates nothing.
//
// # String aliasing
//
// Decoded strings and byte slices ALIAS the input buffer (no copy): they are
// valid only while that buffer is neither modified nor reused. Code that
// keeps a decoded value beyond that point must call Clone (one allocation for
// all strings of a LogGroup).
package protocol

import "unsafe"

// LogContent is one key/value of a Log.
type LogContent struct {
	Key, Value string
}

// Log is one log event.
type Log struct {
	Time      uint32 // unix seconds
	TimeNs    uint32 // nanoseconds within Time; meaningful when HasTimeNs
	HasTimeNs bool
	Contents  []LogContent
	// Values is LoongCollector's `repeated string values = 3` extension
	// (values whose keys are carried elsewhere). The SDKs never send it;
	// Sluice decodes and re-encodes it so a relayed group is not altered.
	Values []string
}

// LogTag is a LogGroup-level tag (shown as __tag__:<Key> in queries).
type LogTag struct {
	Key, Value string
}

// LogGroup is a batch of logs that share topic, source and tags.
//
// When filled by a decoder, strings may alias the decoded buffer (see the
// package documentation) and are valid only while that buffer is.
type LogGroup struct {
	Logs        []Log
	Category    string
	Topic       string
	Source      string
	MachineUUID string
	LogTags     []LogTag
}

// LogGroupList is the body of pull (PullLogs) responses: several LogGroups.
type LogGroupList struct {
	LogGroups []LogGroup
}

// Reset empties l for reuse, keeping slice capacity. Contents and Values
// still reference their previous strings until overwritten; that only delays
// garbage collection of the buffer they came from.
func (l *Log) Reset() {
	l.Time, l.TimeNs, l.HasTimeNs = 0, 0, false
	l.Contents = l.Contents[:0]
	l.Values = l.Values[:0]
}

// Reset empties g for reuse, keeping the capacity of Logs (and of each
// Log's Contents) and LogTags.
func (g *LogGroup) Reset() {
	g.Logs = g.Logs[:0]
	g.Category, g.Topic, g.Source, g.MachineUUID = "", "", "", ""
	g.LogTags = g.LogTags[:0]
}

// Reset empties gl for reuse, keeping the capacity of every nested slice.
func (gl *LogGroupList) Reset() {
	gl.LogGroups = gl.LogGroups[:0]
}

// Clone returns a deep copy of g whose strings no longer alias any decoded
// buffer. All strings share one allocation.
func (g *LogGroup) Clone() *LogGroup {
	n := len(g.Category) + len(g.Topic) + len(g.Source) + len(g.MachineUUID)
	for i := range g.LogTags {
		n += len(g.LogTags[i].Key) + len(g.LogTags[i].Value)
	}
	nContents, nValues := 0, 0
	for i := range g.Logs {
		l := &g.Logs[i]
		nContents += len(l.Contents)
		nValues += len(l.Values)
		for j := range l.Contents {
			n += len(l.Contents[j].Key) + len(l.Contents[j].Value)
		}
		for _, v := range l.Values {
			n += len(v)
		}
	}
	a := stringArena{buf: make([]byte, 0, n)}
	c := &LogGroup{
		Category:    a.copy(g.Category),
		Topic:       a.copy(g.Topic),
		Source:      a.copy(g.Source),
		MachineUUID: a.copy(g.MachineUUID),
	}
	if len(g.LogTags) > 0 {
		c.LogTags = make([]LogTag, len(g.LogTags))
		for i, t := range g.LogTags {
			c.LogTags[i] = LogTag{Key: a.copy(t.Key), Value: a.copy(t.Value)}
		}
	}
	if len(g.Logs) > 0 {
		c.Logs = make([]Log, len(g.Logs))
		contents := make([]LogContent, nContents)
		var values []string
		if nValues > 0 {
			values = make([]string, nValues)
		}
		for i := range g.Logs {
			src, dst := &g.Logs[i], &c.Logs[i]
			dst.Time, dst.TimeNs, dst.HasTimeNs = src.Time, src.TimeNs, src.HasTimeNs
			if len(src.Contents) > 0 {
				dst.Contents = contents[:len(src.Contents):len(src.Contents)]
				contents = contents[len(src.Contents):]
				for j, kv := range src.Contents {
					dst.Contents[j] = LogContent{Key: a.copy(kv.Key), Value: a.copy(kv.Value)}
				}
			}
			if len(src.Values) > 0 {
				dst.Values = values[:len(src.Values):len(src.Values)]
				values = values[len(src.Values):]
				for j, v := range src.Values {
					dst.Values[j] = a.copy(v)
				}
			}
		}
	}
	return c
}

// stringArena hands out strings carved from one preallocated buffer. buf
// must have enough capacity for every copy so it never reallocates (earlier
// strings point into it).
type stringArena struct{ buf []byte }

func (a *stringArena) copy(s string) string {
	if s == "" {
		return ""
	}
	start := len(a.buf)
	a.buf = append(a.buf, s...)
	return unsafe.String(&a.buf[start], len(s))
}
