package stdout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/output/stdout"
	"github.com/sluicelog/sluice/agent/pipeline"
)

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWritesJSONLinesAndAcks(t *testing.T) {
	var buf bytes.Buffer
	o, err := stdout.New(stdout.Config{Source: "host-ip"}, stdout.Settings{Writer: &buf})
	require.NoError(t, err)
	require.NoError(t, o.Start(context.Background()))
	b := pipeline.NewBatch()
	b.Topic = "web"
	b.BeginEvent(1700000000, 0)
	b.AddField("content", []byte("hello"))
	b.EndEvent()
	var acks []error
	b.Ack = pipeline.AckFunc(func(err error) { acks = append(acks, err) })
	require.NoError(t, o.Consume(context.Background(), b))
	require.Equal(t, []error{nil}, acks)

	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(buf.String())), &m))
	require.Equal(t, map[string]any{"__time__": 1700000000.0, "__topic__": "web", "__source__": "host-ip", "content": "hello"}, m)

	require.NoError(t, o.Shutdown(context.Background()))
	require.Error(t, o.Consume(context.Background(), b))
}

func TestWriteErrorNotAcked(t *testing.T) {
	o, err := stdout.New(stdout.Config{}, stdout.Settings{Writer: failWriter{}})
	require.NoError(t, err)
	b := pipeline.NewBatch()
	b.BeginEvent(1, 0)
	b.EndEvent()
	acked := false
	b.Ack = pipeline.AckFunc(func(error) { acked = true })
	require.ErrorContains(t, o.Consume(context.Background(), b), "broken pipe")
	require.False(t, acked)
}
