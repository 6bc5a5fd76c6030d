package process

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicelog/sluice/agent/pipeline"
)

func benchProcess(b *testing.B, cfg Config) {
	s, err := NewStage(cfg, pipeline.ConsumerFunc(func(context.Context, *pipeline.Batch) error { return nil }), Settings{})
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]string, 256)
	var size int64
	for i := range msgs {
		msgs[i] = fmt.Sprintf("user=u%d action=login password=s3cr3t%d from 10.0.0.%d", i, i*7, i%256)
		size += int64(len(msgs[i]) + 10)
	}
	in := pipeline.NewBatch()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		in.Reset()
		for i, m := range msgs {
			in.BeginEvent(1, 0)
			in.AddFieldString("level", [...]string{"INFO", "ERROR", "DEBUG"}[i%3])
			in.AddFieldString("content", m)
			in.EndEvent()
		}
		if err := s.Consume(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFilterAndTags(b *testing.B) {
	benchProcess(b, Config{FilterKey: []string{"level"}, FilterRegex: []string{"INFO|ERROR"}, Hostname: "node-1",
		EnvTags: []pipeline.Field{{Key: "_pod_name_", Value: "web-1"}, {Key: "_namespace_", Value: "default"}}})
}

func BenchmarkMaskMD5(b *testing.B) {
	benchProcess(b, Config{SensitiveKeys: []SensitiveKey{{Key: "content", Type: "md5", RegexBegin: "password=", RegexContent: `\S+`}}})
}
