package containerstdout

import (
	"bytes"
	"context"
	"testing"

	"github.com/sluicelog/sluice/agent/input/file"
	"github.com/sluicelog/sluice/mocklog"
)

func benchLines(b *testing.B, format string) [][]byte {
	var buf bytes.Buffer
	g, err := mocklog.New(mocklog.Options{LogType: "nginx", Writer: &buf, TotalCount: 10000, Container: format, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
}

func benchDecoder(b *testing.B, format string) {
	lines := benchLines(b, format)
	var size int64
	for _, l := range lines {
		size += int64(len(l)) + 1
	}
	d, err := NewDecoder(DecoderConfig{Stdout: true, Stderr: true})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	emit := func(file.Event) { n++ }
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		var off int64
		for _, l := range lines {
			off += int64(len(l)) + 1
			d.Push(l, off, emit)
		}
	}
	if n == 0 {
		b.Fatal("no events")
	}
}

func BenchmarkDecoderCRI(b *testing.B)        { benchDecoder(b, mocklog.ContainerCRI) }
func BenchmarkDecoderDockerJSON(b *testing.B) { benchDecoder(b, mocklog.ContainerDockerJSON) }
