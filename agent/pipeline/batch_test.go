package pipeline

import (
	"testing"
)

func TestBatchBuildAbortFilter(t *testing.T) {
	b := NewBatch()
	b.AddTag("__path__", "/var/log/a.log")
	line := []byte("GET /index.html 200")
	b.BeginEvent(100, 5)
	b.AddField("method", line[:3])
	b.AddField("status", line[16:])
	b.EndEvent()
	b.BeginEvent(101, 0)
	b.AddField("method", line[:3])
	b.AbortEvent()
	b.BeginEvent(102, 0)
	b.AddFieldString("content", "x")
	b.EndEvent()
	copy(line, "PUT") // the batch must hold copies, not views of the read buffer

	if b.Len() != 2 {
		t.Fatalf("unexpected event count; got %d; want 2", b.Len())
	}
	ev := b.Events[0]
	if ev.Time != 100 || ev.TimeNs != 5 || len(ev.Fields) != 2 || ev.Fields[0].Value != "GET" || ev.Fields[1].Value != "200" {
		t.Fatalf("unexpected first event: %+v", ev)
	}
	if got := b.Events[1].Fields; len(got) != 1 || got[0].Value != "x" {
		t.Fatalf("aborted event leaked into the next one: %+v", got)
	}
	wantSize := len("__path__/var/log/a.log") + len("methodGET") + len("status200") + len("contentx")
	if b.Size() != wantSize {
		t.Fatalf("unexpected size; got %d; want %d", b.Size(), wantSize)
	}
	b.Filter(func(e *Event) bool { return e.Time != 100 })
	if b.Len() != 1 || b.Events[0].Time != 102 || b.Size() != len("__path__/var/log/a.log")+len("contentx") {
		t.Fatalf("unexpected batch after filter: %+v size %d", b.Events, b.Size())
	}
	b.Reset()
	if b.Len() != 0 || len(b.Tags) != 0 || b.Size() != 0 || b.Ack != nil {
		t.Fatalf("reset left state behind: %+v", b)
	}
}

func TestBatchHugeValueDoesNotCorruptEarlierOnes(t *testing.T) {
	b := NewBatch()
	b.BeginEvent(1, 0)
	b.AddField("a", []byte("small"))
	big := make([]byte, arenaChunk*2)
	for i := range big {
		big[i] = 'x'
	}
	b.AddField("b", big)
	for i := 0; i < 10000; i++ { // force several new chunks
		b.AddField("c", []byte("0123456789"))
	}
	b.EndEvent()
	f := b.Events[0].Fields
	if f[0].Value != "small" || len(f[1].Value) != len(big) || f[len(f)-1].Value != "0123456789" {
		t.Fatalf("arena corrupted values")
	}
}

func BenchmarkBatchBuild(b *testing.B) {
	batch := NewBatch()
	v := []byte("192.168.0.1")
	b.ReportAllocs()
	for b.Loop() {
		batch.Reset()
		for i := 0; i < 1000; i++ {
			batch.BeginEvent(1, 0)
			for j := 0; j < 10; j++ {
				batch.AddField("remote_addr", v)
			}
			batch.EndEvent()
		}
	}
}
