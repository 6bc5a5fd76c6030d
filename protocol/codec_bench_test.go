package protocol_test

// Benchmarks for the LogGroup codec, on realistic nginx groups (ten keys per
// log, 4 KiB and 1 MiB encoded). The "easyproto" and "sdk" variants are the
// alternatives the hand-written codec was chosen against (see the package
// documentation): easyproto is github.com/VictoriaMetrics/easyproto, "sdk"
// is the Go SDK's gogo-generated code.
//
// Compare runs with:
//
//	go test -run '^$' -bench 'LogGroup' -benchmem -count 6 ./protocol/ > new.txt
//	benchstat old.txt new.txt

import (
	"fmt"
	"testing"

	"github.com/VictoriaMetrics/easyproto"
	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
)

var benchSizes = []struct {
	name string
	size int
}{{"4KiB", 4 << 10}, {"1MiB", 1 << 20}}

func BenchmarkEncodeLogGroup(b *testing.B) {
	for _, sz := range benchSizes {
		g := protocoltest.NginxLogGroup(sz.size)
		n := protocol.LogGroupSize(g)
		b.Run(sz.name+"/sluice", func(b *testing.B) {
			buf := make([]byte, 0, n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				buf = protocol.AppendLogGroup(buf[:0], g)
			}
		})
		b.Run(sz.name+"/easyproto", func(b *testing.B) {
			buf := make([]byte, 0, n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				buf = easyprotoAppendLogGroup(buf[:0], g)
			}
		})
		b.Run(sz.name+"/sdk", func(b *testing.B) {
			s := protocoltest.ToSDK(g)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := proto.Marshal(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeLogGroup(b *testing.B) {
	for _, sz := range benchSizes {
		body := protocol.AppendLogGroup(nil, protocoltest.NginxLogGroup(sz.size))
		b.Run(sz.name+"/sluice", func(b *testing.B) {
			var g protocol.LogGroup
			_ = g.Unmarshal(body) // warm up: steady state reuses g's slices
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := g.Unmarshal(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(sz.name+"/easyproto", func(b *testing.B) {
			var g protocol.LogGroup
			_ = easyprotoUnmarshalLogGroup(&g, body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := easyprotoUnmarshalLogGroup(&g, body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(sz.name+"/sdk", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var s sls.LogGroup
				if err := proto.Unmarshal(body, &s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeLogGroupList(b *testing.B) {
	g := protocoltest.NginxLogGroup(64 << 10)
	var gl protocol.LogGroupList
	for range 16 {
		gl.LogGroups = append(gl.LogGroups, *g)
	}
	body := protocol.AppendLogGroupList(nil, &gl)
	var dec protocol.LogGroupList
	_ = dec.Unmarshal(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := dec.Unmarshal(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLogGroupSize(b *testing.B) {
	g := protocoltest.NginxLogGroup(1 << 20)
	n := protocol.LogGroupSize(g)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		if protocol.LogGroupSize(g) != n {
			b.Fatal("size changed")
		}
	}
}

var easyprotoPool easyproto.MarshalerPool

func easyprotoAppendLogGroup(dst []byte, g *protocol.LogGroup) []byte {
	m := easyprotoPool.Get()
	mm := m.MessageMarshaler()
	for i := range g.Logs {
		l := &g.Logs[i]
		lm := mm.AppendMessage(1)
		lm.AppendUint32(1, l.Time)
		for _, c := range l.Contents {
			cm := lm.AppendMessage(2)
			cm.AppendString(1, c.Key)
			cm.AppendString(2, c.Value)
		}
		if l.HasTimeNs {
			lm.AppendFixed32(4, l.TimeNs)
		}
	}
	if g.Topic != "" {
		mm.AppendString(3, g.Topic)
	}
	if g.Source != "" {
		mm.AppendString(4, g.Source)
	}
	for _, t := range g.LogTags {
		tm := mm.AppendMessage(6)
		tm.AppendString(1, t.Key)
		tm.AppendString(2, t.Value)
	}
	dst = m.Marshal(dst)
	easyprotoPool.Put(m)
	return dst
}

// easyprotoUnmarshalLogGroup is a minimal decoder (no required-field or
// wire-type checks, which would only slow it further).
func easyprotoUnmarshalLogGroup(g *protocol.LogGroup, src []byte) (err error) {
	g.Reset()
	var fc easyproto.FieldContext
	for len(src) > 0 {
		if src, err = fc.NextField(src); err != nil {
			return err
		}
		switch fc.FieldNum {
		case 1:
			data, _ := fc.MessageData()
			if len(g.Logs) < cap(g.Logs) {
				g.Logs = g.Logs[:len(g.Logs)+1]
			} else {
				g.Logs = append(g.Logs, protocol.Log{})
			}
			l := &g.Logs[len(g.Logs)-1]
			l.Reset()
			var lfc easyproto.FieldContext
			for len(data) > 0 {
				if data, err = lfc.NextField(data); err != nil {
					return err
				}
				switch lfc.FieldNum {
				case 1:
					l.Time, _ = lfc.Uint32()
				case 2:
					kv, _ := lfc.MessageData()
					var c protocol.LogContent
					var kfc easyproto.FieldContext
					for len(kv) > 0 {
						if kv, err = kfc.NextField(kv); err != nil {
							return err
						}
						switch kfc.FieldNum {
						case 1:
							c.Key, _ = kfc.String()
						case 2:
							c.Value, _ = kfc.String()
						}
					}
					l.Contents = append(l.Contents, c)
				case 4:
					l.TimeNs, _ = lfc.Fixed32()
					l.HasTimeNs = true
				}
			}
		case 3:
			g.Topic, _ = fc.String()
		case 4:
			g.Source, _ = fc.String()
		case 6:
			data, _ := fc.MessageData()
			var t protocol.LogTag
			t.Key, _, _ = easyproto.GetString(data, 1)
			t.Value, _, _ = easyproto.GetString(data, 2)
			g.LogTags = append(g.LogTags, t)
		}
	}
	if len(g.Logs) == 0 && len(src) != 0 {
		return fmt.Errorf("unexpected")
	}
	return nil
}
