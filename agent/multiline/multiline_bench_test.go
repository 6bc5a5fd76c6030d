package multiline

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sluicelog/sluice/internal/cputime"
)

// javaLog returns about n bytes of Java application log: one-line entries
// mixed with exceptions carrying 20-frame stack traces.
func javaLog(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "2024-01-02 10:%02d:%02d.%03d [http-nio-8080-exec-%d] INFO  com.example.web.OrderController - order %d accepted for customer %d\n",
			i/60%60, i%60, i%1000, i%16, i, i*7)
		if i%4 == 0 {
			fmt.Fprintf(&b, "2024-01-02 10:%02d:%02d.%03d [http-nio-8080-exec-%d] ERROR com.example.service.PaymentService - payment %d failed\n",
				i/60%60, i%60, i%1000, i%16, i)
			b.WriteString("java.lang.IllegalStateException: card declined by issuer\n")
			for f := 0; f < 20; f++ {
				fmt.Fprintf(&b, "\tat com.example.service.PaymentService.charge%d(PaymentService.java:%d)\n", f, 100+f)
			}
			b.WriteString("Caused by: java.net.SocketTimeoutException: Read timed out\n\t... 20 more\n")
		}
	}
	return b.Bytes()
}

func BenchmarkSplitterJava(b *testing.B) {
	data := javaLog(4 << 20)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	ends := make([]int64, len(lines))
	var off int64
	for i, l := range lines {
		off += int64(len(l)) + 1
		ends[i] = off
	}
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"begin", Config{BeginRegex: `\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}.*`}},
		{"begin+continue", Config{BeginRegex: `\d{4}-\d{2}-\d{2} .*`, ContinueRegex: `(\s+at|\s+\.\.\.|Caused by:|java\.).*`}},
		{"single", Config{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := New(bc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			var events, size int
			emit := func(ev []byte, _ int64) { events++; size += len(ev) }
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			start := cputime.Now()
			for b.Loop() {
				for i, l := range lines {
					s.Push(l, ends[i], emit)
				}
				s.Flush(emit)
			}
			cputime.ReportThroughput(b, start, int64(len(data)))
			if s.Stats().UnmatchedLines != 0 || events == 0 {
				b.Fatalf("unmatched %d, events %d", s.Stats().UnmatchedLines, events)
			}
		})
	}
}
