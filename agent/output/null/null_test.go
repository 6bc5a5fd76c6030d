package null

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/pipeline"
)

func TestConsumeAcksAndCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	o, err := New(Settings{Registerer: reg})
	require.NoError(t, err)
	b := pipeline.NewBatch()
	for range 3 {
		b.BeginEvent(1, 0)
		b.AddField("content", []byte("hello"))
		b.EndEvent()
	}
	var acked []error
	b.Ack = pipeline.AckFunc(func(err error) { acked = append(acked, err) })
	require.NoError(t, o.Consume(context.Background(), b))
	require.Equal(t, []error{nil}, acked)
	require.Equal(t, 3.0, testutil.ToFloat64(o.events))
	require.NoError(t, o.Shutdown(context.Background()))
}
