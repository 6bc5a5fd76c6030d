package sls_test

// BenchmarkSendPath measures the whole agent send path — Consume (group +
// protobuf encode), lz4/zstd compression, signing, HTTP POST — against an
// httptest server that reads and discards the body. SetBytes is the encoded
// (uncompressed) LogGroup size, so MB/s is raw throughput; "MiB/cpu-s" is
// that size divided by the CPU time of the whole process (getrusage, user +
// system), which also includes the discarding server and the benchmark's
// own bookkeeping, so it understates the agent's own figure.
//
//	go test -run '^$' -bench SendPath -benchtime 400x ./agent/output/sls/

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/agent/output/sls"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/internal/cputime"
	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
)

func BenchmarkSendPath(b *testing.B) {
	for _, bc := range []struct {
		name string
		mod  func(*sls.Config)
	}{
		{"v1-lz4", func(*sls.Config) {}},
		{"v4-lz4", func(c *sls.Config) { c.SignatureVersion, c.Region = 4, "cn-hangzhou" }},
		{"v1-zstd", func(c *sls.Config) { c.Compression = "zstd" }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set(protocol.HeaderRequestID, "r")
			}))
			defer srv.Close()
			cfg := sls.Config{
				Endpoint: srv.URL, Project: "p", Logstore: "l", AccessKeyID: testAK, AccessKeySecret: testSecret,
				Source: "10.0.0.1", DeadLetterDir: filepath.Join(b.TempDir(), "dead"),
			}
			bc.mod(&cfg)
			o, err := sls.New(cfg, sls.Settings{})
			if err != nil {
				b.Fatal(err)
			}
			if err := o.Start(context.Background()); err != nil {
				b.Fatal(err)
			}

			// One batch of parsed nginx logs (~256 KiB encoded), as the
			// parse stage would hand it over.
			g := protocoltest.NginxLogGroup(256 << 10)
			batch := pipeline.NewBatch()
			batch.Topic = g.Topic
			for _, t := range g.LogTags[:2] {
				batch.AddTag(t.Key, t.Value)
			}
			for _, l := range g.Logs {
				batch.BeginEvent(l.Time, l.TimeNs)
				for _, c := range l.Contents {
					batch.AddFieldString(c.Key, c.Value)
				}
				batch.EndEvent()
			}
			raw := protocol.LogGroupSize(g)
			var acked, failed atomic.Int64
			batch.Ack = pipeline.AckFunc(func(err error) {
				if err != nil {
					failed.Add(1)
				}
				acked.Add(1)
			})

			b.SetBytes(int64(raw))
			b.ReportAllocs()
			cpu0 := cputime.Now()
			n := int64(0)
			for b.Loop() {
				if err := o.Consume(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
				n++
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := o.Shutdown(ctx); err != nil {
				b.Fatal(err)
			}
			cpu := cputime.Now() - cpu0
			if acked.Load() != n || failed.Load() != 0 {
				b.Fatalf("acked %d of %d, %d failed", acked.Load(), n, failed.Load())
			}
			b.ReportMetric(float64(n)*float64(raw)/(1<<20)/cpu.Seconds(), "MiB/cpu-s")
		})
	}
}
