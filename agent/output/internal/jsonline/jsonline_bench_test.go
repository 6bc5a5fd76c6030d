package jsonline_test

import (
	"strconv"
	"testing"

	"github.com/sluicelog/sluice/agent/output/internal/jsonline"
	"github.com/sluicelog/sluice/agent/pipeline"
)

// BenchmarkAppendBatch renders 256 nginx-like events of 9 fields with two
// tags, as the stdout and file outputs do.
//
//	go test -run '^$' -bench AppendBatch -count 10 ./agent/output/internal/jsonline | benchstat -
func BenchmarkAppendBatch(b *testing.B) {
	batch := pipeline.NewBatch()
	batch.AddTag("__path__", "/var/log/nginx/access.log")
	batch.AddTag("__hostname__", "node-1")
	for i := range 256 {
		batch.BeginEvent(1700000000+uint32(i), 0)
		batch.AddFieldString("remote_addr", "10.0.0."+strconv.Itoa(i))
		batch.AddFieldString("time_local", "10/Oct/2024:13:55:36 +0800")
		batch.AddFieldString("method", "GET")
		batch.AddFieldString("url", "/api/v1/orders/"+strconv.Itoa(i*31)+"?page=2")
		batch.AddFieldString("protocol", "HTTP/1.1")
		batch.AddFieldString("status", "200")
		batch.AddFieldString("body_bytes_sent", strconv.Itoa(512+i))
		batch.AddFieldString("http_referer", "https://example.com/shop/item/"+strconv.Itoa(i))
		batch.AddFieldString("http_user_agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36")
		batch.EndEvent()
	}
	buf := jsonline.AppendBatch(nil, batch, "10.0.0.1")
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = jsonline.AppendBatch(buf[:0], batch, "10.0.0.1")
	}
}
