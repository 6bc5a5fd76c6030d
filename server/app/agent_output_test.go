package app_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"

	slsout "github.com/sluicelog/sluice/agent/output/sls"
	"github.com/sluicelog/sluice/agent/pipeline"
)

// TestAgentOutputToServer sends through the agent's real Log Service
// output (agent/output/sls) into the real server: every compression, both
// signature versions, project in the host name or in x-log-project. Every
// batch must be acked nil and every event must be queryable.
func TestAgentOutputToServer(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	_, err := c.CreateProject("agent-proj", "")
	require.NoError(t, err)
	require.NoError(t, c.CreateLogStore("agent-proj", "agent-logs", 7, 2, false, 0))
	require.NoError(t, c.CreateIndex("agent-proj", "agent-logs", sls.Index{
		Line: &sls.IndexLine{Token: []string{" "}},
		Keys: map[string]sls.IndexKey{"content": {Type: "text", DocValue: true, Token: []string{" "}}},
	}))

	cases := []struct {
		compression string
		sigVersion  int
		inHeader    bool
	}{
		{"lz4", 1, false}, {"zstd", 4, false}, {"deflate", 1, true}, {"none", 4, true},
	}
	const batches, perBatch = 5, 40
	for _, tc := range cases {
		name := fmt.Sprintf("%s-v%d-header=%v", tc.compression, tc.sigVersion, tc.inHeader)
		tr := e.Transport()
		out, err := slsout.New(slsout.Config{
			Endpoint: e.Endpoint(), Project: "agent-proj", Logstore: "agent-logs",
			ProjectInHeader: tc.inHeader, AccessKeyID: adminID, AccessKeySecret: adminSecret,
			SignatureVersion: tc.sigVersion, Region: "cn-sluice", Compression: tc.compression,
			FlushInterval: 50 * time.Millisecond, DeadLetterDir: t.TempDir(), Source: "10.9.9.9",
		}, slsout.Settings{Transport: tr})
		require.NoError(t, err, name)
		ctx := context.Background()
		require.NoError(t, out.Start(ctx))

		var wg sync.WaitGroup
		var mu sync.Mutex
		var ackErrs []error
		now := uint32(time.Now().Unix())
		for i := range batches {
			b := pipeline.NewBatch()
			b.Topic = name
			b.AddTag("__path__", "/var/log/app.log")
			for j := range perBatch {
				b.BeginEvent(now, 0)
				b.AddField("content", []byte("event "+strconv.Itoa(i*perBatch+j)))
				b.AddField("status", []byte("200"))
				b.EndEvent()
			}
			wg.Add(1)
			b.Ack = pipeline.AckFunc(func(err error) {
				mu.Lock()
				ackErrs = append(ackErrs, err)
				mu.Unlock()
				wg.Done()
			})
			require.NoError(t, out.Consume(ctx, b))
		}
		wg.Wait()
		require.NoError(t, out.Shutdown(ctx))
		tr.CloseIdleConnections()
		require.Len(t, ackErrs, batches)
		for _, err := range ackErrs {
			require.NoError(t, err, name)
		}

		res, err := c.GetLogsV3("agent-proj", "agent-logs", &sls.GetLogRequest{
			From: int64(now) - 60, To: int64(now) + 60,
			Query: fmt.Sprintf(`__topic__:"%s" | select count(*) as n, count(distinct content) as d`, name)})
		require.NoError(t, err, name)
		require.Len(t, res.Logs, 1)
		require.Equal(t, strconv.Itoa(batches*perBatch), res.Logs[0]["n"], name)
		require.Equal(t, strconv.Itoa(batches*perBatch), res.Logs[0]["d"], name)
	}
}
