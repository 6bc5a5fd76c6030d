package parse

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicelog/sluice/agent/multiline"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/internal/cputime"
)

// javaLog is a Java application log: one-line entries and exceptions with
// 20-frame stack traces.
func javaLog(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "2024-01-02 10:%02d:%02d.%03d [http-nio-8080-exec-%d] INFO  com.example.web.OrderController - order %d accepted\n",
			i/60%60, i%60, i%1000, i%16, i)
		if i%4 == 0 {
			fmt.Fprintf(&b, "2024-01-02 10:%02d:%02d.%03d [http-nio-8080-exec-%d] ERROR com.example.service.PaymentService - payment %d failed\n",
				i/60%60, i%60, i%1000, i%16, i)
			b.WriteString("java.lang.IllegalStateException: card declined by issuer\n")
			for f := 0; f < 20; f++ {
				fmt.Fprintf(&b, "\tat com.example.service.PaymentService.charge%d(PaymentService.java:%d)\n", f, 100+f)
			}
		}
	}
	return b.Bytes()
}

// BenchmarkJavaMultilineParse is the agent's Java path after reading:
// lines → multiline events → batches of 256 → regex parse with time. Input
// reading and output encoding are not included.
func BenchmarkJavaMultilineParse(b *testing.B) {
	data := javaLog(2 << 20)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	sp, err := multiline.New(multiline.Config{BeginRegex: `\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}.*`})
	if err != nil {
		b.Fatal(err)
	}
	events := 0
	next := pipeline.ConsumerFunc(func(_ context.Context, ob *pipeline.Batch) error { events += ob.Len(); return nil })
	st, err := NewStage(Config{
		LogType:    Regex,
		Regex:      `(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}) \[([^\]]*)\] (\w+)\s+(\S+) - (.*)`,
		Keys:       []string{"time", "thread", "level", "class", "message"},
		TimeFormat: "%Y-%m-%d %H:%M:%S.%f",
	}, next, Settings{Location: time.UTC})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	batch := pipeline.NewBatch()
	emit := func(ev []byte, _ int64) {
		batch.BeginEvent(readTime, 0)
		batch.AddField(DefaultSourceKey, ev)
		batch.EndEvent()
		if batch.Len() == 256 {
			if err := st.Consume(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	start := cputime.Now()
	for b.Loop() {
		var off int64
		for _, l := range lines {
			off += int64(len(l)) + 1
			sp.Push(l, off, emit)
		}
		sp.Flush(emit)
	}
	cputime.ReportThroughput(b, start, int64(len(data)))
	if events == 0 || testingFailures(st) != 0 {
		b.Fatalf("events %d failures %v", events, testingFailures(st))
	}
}
