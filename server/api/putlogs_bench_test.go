package api_test

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
)

// BenchmarkPutLogs measures the PutLogs handler end to end minus the store
// (signature check, lz4 decompression, protobuf decoding, metrics): 1000
// nginx-like access logs per request. SetBytes is the uncompressed size.
func BenchmarkPutLogs(b *testing.B) {
	for _, ct := range []protocol.CompressType{protocol.CompressLZ4, protocol.CompressZstd, protocol.CompressNone} {
		b.Run(ct.String(), func(b *testing.B) {
			h := newHarness(b)
			h.logs.discard = true
			g := protocol.LogGroup{Topic: "nginx", Source: "10.0.0.1", LogTags: []protocol.LogTag{{Key: "__path__", Value: "/var/log/nginx/access.log"}}}
			now := uint32(time.Now().Unix())
			for i := range 1000 {
				g.Logs = append(g.Logs, protocol.Log{Time: now, Contents: []protocol.LogContent{
					{Key: "remote_addr", Value: fmt.Sprintf("10.1.%d.%d", i/256, i%256)},
					{Key: "method", Value: "GET"},
					{Key: "path", Value: fmt.Sprintf("/api/v1/items/%d?page=%d", i, i%7)},
					{Key: "status", Value: strconv.Itoa(200 + i%5*100)},
					{Key: "body_bytes_sent", Value: strconv.Itoa(512 + i)},
					{Key: "user_agent", Value: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"},
				}})
			}
			raw := protocol.AppendLogGroup(nil, &g)
			body, err := protocol.AppendCompressed(nil, raw, ct)
			require.NoError(b, err)
			r := httptest.NewRequest("POST", "http://proj.sluice.test/logstores/logs/shards/lb", nil)
			r.Header.Set("Content-Type", protocol.ContentTypeProtobuf)
			if ct != protocol.CompressNone {
				r.Header.Set(protocol.HeaderCompressType, ct.HeaderValue())
				r.Header.Set(protocol.HeaderBodyRawSize, strconv.Itoa(len(raw)))
			}
			require.NoError(b, h.signer.SignRequest(r, body, time.Now()))
			w := httptest.NewRecorder()
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				r.Body = nopCloser{bytes.NewReader(body)}
				r.ContentLength = int64(len(body))
				h.api.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body.String())
				}
			}
			b.ReportMetric(float64(h.logs.logs)/b.Elapsed().Seconds(), "logs/s")
		})
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
