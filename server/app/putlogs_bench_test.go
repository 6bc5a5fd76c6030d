package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/app"
)

// BenchmarkPutLogsE2E is the write path end to end over loopback HTTP:
// signing, lz4, the API handler and the DuckDB store's durable Write, 1000
// access logs per request (SetBytes: uncompressed protobuf bytes).
func BenchmarkPutLogsE2E(b *testing.B) {
	ctx := context.Background()
	srv, err := app.New(app.Config{Listen: "127.0.0.1:0", DataDir: b.TempDir(), AdminKeyID: adminID, AdminKeySecret: adminSecret}, app.Settings{})
	require.NoError(b, err)
	require.NoError(b, srv.Start(ctx))
	defer func() { _ = srv.Shutdown(ctx) }()
	signer := admin()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer hc.CloseIdleConnections()
	send := func(method, path string, body []byte, hdr http.Header) error {
		r, err := http.NewRequest(method, "http://"+srv.Addr()+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		for k, v := range hdr {
			r.Header[k] = v
		}
		r.Header.Set(protocol.HeaderProject, "bench")
		if err := signer.SignRequest(r, body, time.Now()); err != nil {
			return err
		}
		resp, err := hc.Do(r)
		if err != nil {
			return err
		}
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, rb)
		}
		return nil
	}
	js := http.Header{"Content-Type": {"application/json"}}
	require.NoError(b, send("POST", "/", []byte(`{"projectName":"bench"}`), js))
	require.NoError(b, send("POST", "/logstores", []byte(`{"logstoreName":"access","ttl":7,"shardCount":2}`), js))
	require.NoError(b, send("POST", "/logstores/access/index", []byte(`{"line":{"token":[" ","/","?","="]},"keys":{"status":{"type":"long","doc_value":true},"path":{"type":"text","doc_value":true,"token":["/"]}}}`), js))

	now := uint32(time.Now().Unix())
	g := protocol.LogGroup{Topic: "nginx", Source: "10.0.0.1"}
	for i := range 1000 {
		g.Logs = append(g.Logs, protocol.Log{Time: now, Contents: []protocol.LogContent{
			{Key: "remote_addr", Value: fmt.Sprintf("10.1.%d.%d", i/256, i%256)},
			{Key: "method", Value: "GET"},
			{Key: "path", Value: fmt.Sprintf("/api/v1/items/%d", i)},
			{Key: "status", Value: strconv.Itoa(200 + i%5*100)},
			{Key: "user_agent", Value: "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"},
		}})
	}
	raw := protocol.AppendLogGroup(nil, &g)
	body, err := protocol.AppendCompressed(nil, raw, protocol.CompressLZ4)
	require.NoError(b, err)
	hdr := http.Header{}
	hdr.Set("Content-Type", protocol.ContentTypeProtobuf)
	hdr.Set(protocol.HeaderCompressType, "lz4")
	hdr.Set(protocol.HeaderBodyRawSize, strconv.Itoa(len(raw)))
	b.Run("serial", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			require.NoError(b, send("POST", "/logstores/access/shards/lb", body, hdr))
			n += len(g.Logs)
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "logs/s")
	})
	// Many agents at once: the store commits concurrent writes together.
	b.Run("parallel16", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		b.SetParallelism(8) // 8 x GOMAXPROCS(2) = 16 senders
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := send("POST", "/logstores/access/shards/lb", body, hdr); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*len(g.Logs))/time.Since(start).Seconds(), "logs/s")
	})
}
