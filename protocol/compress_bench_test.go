package protocol_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
)

// Compression throughput on an encoded 1 MiB nginx LogGroup; SetBytes is
// the RAW size for both directions, so MB/s compare directly with the
// agent's send-path target.
func BenchmarkCompress(b *testing.B) {
	raw := protocol.AppendLogGroup(nil, protocoltest.NginxLogGroup(1<<20))
	for _, ct := range allCompressions[1:] {
		b.Run(ct.String(), func(b *testing.B) {
			var dst []byte
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				dst, err = protocol.AppendCompressed(dst[:0], raw, ct)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(raw))/float64(len(dst)), "ratio")
		})
	}
}

func BenchmarkDecompress(b *testing.B) {
	raw := protocol.AppendLogGroup(nil, protocoltest.NginxLogGroup(1<<20))
	for _, ct := range allCompressions[1:] {
		c, err := protocol.AppendCompressed(nil, raw, ct)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(ct.String(), func(b *testing.B) {
			dst := make([]byte, 0, len(raw)+1)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if dst, err = protocol.Decompress(dst[:0], c, ct, len(raw), 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	body := make([]byte, 200<<10) // a typical lz4 body of a 1 MiB group
	for _, v := range []protocol.SignatureVersion{protocol.SignatureV1, protocol.SignatureV4} {
		b.Run(v.String(), func(b *testing.B) {
			s := protocol.Signer{Version: v, Region: "cn-hangzhou",
				Credentials: protocol.Credentials{AccessKeyID: testAK, AccessKeySecret: testSecret}}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				h := make(map[string][]string, 8)
				h["Content-Type"] = []string{protocol.ContentTypeProtobuf}
				h["X-Log-Apiversion"] = []string{protocol.APIVersion}
				h["X-Log-Bodyrawsize"] = []string{"1048576"}
				h["X-Log-Compresstype"] = []string{"lz4"}
				if err := s.Sign("POST", "/logstores/ls/shards/lb", "", "p.example.com", h, body, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	body := make([]byte, 200<<10)
	lookup := func(context.Context, string) (string, error) { return testSecret, nil }
	for _, v := range []protocol.SignatureVersion{protocol.SignatureV1, protocol.SignatureV4} {
		b.Run(v.String(), func(b *testing.B) {
			s := protocol.Signer{Version: v, Region: "cn-hangzhou",
				Credentials: protocol.Credentials{AccessKeyID: testAK, AccessKeySecret: testSecret}}
			req := httptest.NewRequest("POST", "http://p.example.com/logstores/ls/shards/lb", nil)
			req.Header.Set("Content-Type", protocol.ContentTypeProtobuf)
			req.Header.Set("X-Log-Apiversion", protocol.APIVersion)
			req.Header.Set("X-Log-Bodyrawsize", "1048576")
			req.Header.Set("X-Log-Compresstype", "lz4")
			if err := s.SignRequest(req, body, time.Now()); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := protocol.VerifyRequest(context.Background(), req, body, lookup); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
