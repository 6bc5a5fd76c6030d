package mocklog

import (
	"io"
	"testing"
)

// BenchmarkGenerate measures generation of one 256 KiB batch into
// io.Discard, per log type. Compare runs with
//
//	go test -run '^$' -bench Generate -count 6 ./mocklog > new.txt && benchstat old.txt new.txt
func BenchmarkGenerate(b *testing.B) {
	type variant struct{ name, logType, container string }
	var variants []variant
	for _, lt := range LogTypes() {
		variants = append(variants, variant{lt, lt, ""})
	}
	variants = append(variants, variant{"nginx-cri", LogTypeNginx, ContainerCRI}, variant{"json-docker", LogTypeJSON, ContainerDockerJSON})
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			g, err := New(Options{LogType: v.logType, Container: v.container, Writer: io.Discard, Now: fixedNow})
			if err != nil {
				b.Fatal(err)
			}
			var out sink = writerSink{io.Discard}
			if err := g.batch(out, 1<<62); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(g.stats.Bytes))
			b.ReportAllocs()
			for b.Loop() {
				if err := g.batch(out, 1<<62); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(g.stats.Events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
