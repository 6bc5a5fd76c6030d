package pipelinetest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/pipeline"
)

func batch(t *testing.T, acks *[]error, lines ...string) *pipeline.Batch {
	t.Helper()
	b := pipeline.NewBatch()
	b.Topic = "topic"
	b.AddTag("__path__", "/var/log/a.log")
	for _, l := range lines {
		b.BeginEvent(1700000000, 5)
		b.AddFieldString("content", l)
		b.EndEvent()
	}
	b.Ack = pipeline.AckFunc(func(err error) { *acks = append(*acks, err) })
	return b
}

func TestRecorderCopiesEventsAndAcksWithAckErr(t *testing.T) {
	boom := errors.New("backend rejected")
	r := &Recorder{AckErr: func(n int) error {
		if n == 2 {
			return boom
		}
		return nil
	}}
	var acks []error
	b := batch(t, &acks, "a", "b")
	require.NoError(t, r.Consume(context.Background(), b))
	require.NoError(t, r.Consume(context.Background(), batch(t, &acks, "lost")))
	require.NoError(t, r.Consume(context.Background(), batch(t, &acks, "c")))

	require.Equal(t, []error{nil, boom, nil}, acks)
	require.Equal(t, 3, r.Batches())
	require.Equal(t, []string{"a", "b", "c"}, r.Contents(), "a batch acked with an error is not recorded")
	e := r.Events()[0]
	require.Equal(t, uint32(1700000000), e.Time)
	require.Equal(t, "topic", e.Topic)
	require.Equal(t, "/var/log/a.log", e.Path())
	require.Equal(t, map[string]string{"content": "a"}, e.FieldMap())
}

func TestRecorderGateBlocksUntilReleasedOrCancelled(t *testing.T) {
	r := &Recorder{Gate: make(chan struct{})}
	var acks []error
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, r.Consume(ctx, batch(t, &acks, "x")), context.Canceled)
	require.Empty(t, acks, "a batch not taken is not acked")

	done := make(chan error)
	go func() { done <- r.Consume(context.Background(), batch(t, &acks, "y")) }()
	r.Gate <- struct{}{}
	require.NoError(t, <-done)
	require.Equal(t, []string{"y"}, r.Contents())
}
