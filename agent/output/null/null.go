// Package null is an output that discards every batch and acknowledges it at
// once. It exists for benchmarks (what the agent costs without any output
// cost) and for dry runs of configs; it counts what it discarded so a
// misconfigured agent that throws data away still shows it in its metrics.
package null

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/agent/pipeline"
)

// Settings carry what the output needs from the agent.
type Settings struct {
	Registerer prometheus.Registerer // nil registers nothing
}

// Output discards batches. It implements pipeline.Consumer.
type Output struct {
	events, bytes prometheus.Counter
}

// New returns a null output.
func New(set Settings) (*Output, error) {
	o := &Output{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_output_null_events_total", Help: "Events discarded by the null output (benchmarks, dry runs).",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_output_null_bytes_total", Help: "Approximate payload bytes discarded by the null output.",
		}),
	}
	if set.Registerer != nil {
		for _, c := range []prometheus.Collector{o.events, o.bytes} {
			if err := set.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return o, nil
}

// Start does nothing.
func (o *Output) Start(context.Context) error { return nil }

// Consume counts b and acks it as delivered.
func (o *Output) Consume(_ context.Context, b *pipeline.Batch) error {
	o.events.Add(float64(b.Len()))
	o.bytes.Add(float64(b.Size()))
	if b.Ack != nil {
		b.Ack.Done(nil)
	}
	return nil
}

// Shutdown does nothing; it is idempotent.
func (o *Output) Shutdown(context.Context) error { return nil }
