package parse

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/agent/regexp/anchored"
	"github.com/sluicelog/sluice/internal/cputime"
)

func nginxLines(n int) []string {
	agents := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
		"curl/8.4.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
	}
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(`10.%d.%d.%d - - [10/Oct/2024:13:55:%02d +0800] "GET /api/v1/orders/%d?page=%d HTTP/1.1" %d %d "https://example.com/shop/item/%d" "%s"`,
			i%256, i/256%256, i%7, i%60, i*31, i%10, 200+i%3*100, 512+i*13%4096, i, agents[i%len(agents)])
	}
	return lines
}

// benchStage measures the stage end to end on a 256-event batch, as an input
// would drive it: the batch is refilled, parsed and handed to a consumer
// that only counts.
func benchStage(b *testing.B, cfg Config, lines []string) {
	var n int
	next := pipeline.ConsumerFunc(func(_ context.Context, ob *pipeline.Batch) error { n += ob.Len(); return nil })
	s, err := NewStage(cfg, next, Settings{Location: time.UTC})
	if err != nil {
		b.Fatal(err)
	}
	in := pipeline.NewBatch()
	var size int64
	for _, l := range lines {
		size += int64(len(l)) + 1
	}
	ctx := context.Background()
	b.SetBytes(size)
	b.ReportAllocs()
	start := cputime.Now()
	for b.Loop() {
		in.Reset()
		for _, l := range lines {
			in.BeginEvent(readTime, 0)
			in.AddFieldString(DefaultSourceKey, l)
			in.EndEvent()
		}
		if err := s.Consume(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	cputime.ReportThroughput(b, start, size)
	if n == 0 || testingFailures(s) != 0 {
		b.Fatalf("events %d, failures %v", n, testingFailures(s))
	}
}

func testingFailures(s *Stage) float64 {
	var total float64
	for r := reasonNoSource; r < numReasons; r++ {
		total += counterValue(s.m.failures[r])
	}
	return total
}

func BenchmarkNginx(b *testing.B) {
	lines := nginxLines(256)
	b.Run("stage", func(b *testing.B) { benchStage(b, Config{LogType: Nginx}, lines) })
	b.Run("stage+time", func(b *testing.B) {
		benchStage(b, Config{LogType: Nginx, TimeKey: "time_local", TimeFormat: NginxTimeFormat}, lines)
	})
	// The baseline: Go's regexp on the same pattern, submatches only.
	b.Run("regexp-baseline", func(b *testing.B) {
		re := regexp.MustCompile(anchored.Wrap(NginxRegex, regexOptions))
		var size int64
		for _, l := range lines {
			size += int64(len(l)) + 1
		}
		b.SetBytes(size)
		b.ReportAllocs()
		start := cputime.Now()
		for b.Loop() {
			for _, l := range lines {
				if re.FindStringSubmatchIndex(l) == nil {
					b.Fatal("no match")
				}
			}
		}
		cputime.ReportThroughput(b, start, size)
	})
}

func BenchmarkJSON(b *testing.B) {
	lines := make([]string, 256)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"time":"2024-10-10T13:55:%02d+08:00","level":"info","msg":"request served","path":"/api/v1/orders/%d","status":%d,"latency_ms":%d.%d,"user":{"id":%d,"tags":["a","b"]}}`,
			i%60, i, 200+i%3*100, i%100, i%10, i)
	}
	benchStage(b, Config{LogType: JSON, TimeKey: "time", TimeFormat: "%Y-%m-%dT%H:%M:%S%z"}, lines)
}

func BenchmarkDelimiter(b *testing.B) {
	lines := make([]string, 256)
	for i := range lines {
		lines[i] = fmt.Sprintf(`2024-10-10 13:55:%02d|10.0.%d.%d|GET|/api/v1/orders/%d|%d|"quoted|value"|%d`, i%60, i%256, i%7, i, 200+i%3*100, i*13)
	}
	benchStage(b, Config{LogType: Delimiter, Separator: "|", Keys: []string{"time", "ip", "method", "uri", "status", "q", "bytes"}, TimeFormat: "%Y-%m-%d %H:%M:%S"}, lines)
}

func BenchmarkApsara(b *testing.B) {
	lines := make([]string, 256)
	for i := range lines {
		lines[i] = fmt.Sprintf("[2024-10-10 13:55:%02d.%06d]\t[INFO]\t[%d]\t[src/server/handler.cpp:%d]\tmethod:GET\turi:/api/v1/orders/%d\tstatus:%d", i%60, i*37, 1000+i, i%500, i, 200+i%3*100)
	}
	benchStage(b, Config{LogType: Apsara}, lines)
}
