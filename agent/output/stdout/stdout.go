// Package stdout is the stdout output of sluice-agent: every event becomes
// one JSON line (see agent/output/internal/jsonline) written to standard
// output — for debugging pipelines and for running under a log collector of
// its own.
//
// Consume writes synchronously and acks with Done(nil) once the write
// returned: standard output offers nothing more durable. A failed write is
// returned as Consume's error (the batch stays the caller's).
package stdout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/agent/output/internal/jsonline"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/internal/promreg"
)

// Config configures the stdout output.
type Config struct {
	// Source is written as __source__ for batches without one.
	Source string
}

// Validate checks c (nothing can be wrong today).
func (c *Config) Validate() error { return nil }

// Settings carry what the output needs from the agent.
type Settings struct {
	// Writer receives the lines; nil is os.Stdout.
	Writer     io.Writer
	Registerer prometheus.Registerer // nil registers nothing
}

// Output writes batches as JSON lines. It implements pipeline.Consumer.
type Output struct {
	cfg    Config
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	closed bool
	events prometheus.Counter
}

// New returns a stdout output.
func New(cfg Config, set Settings) (*Output, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := set.Writer
	if w == nil {
		w = os.Stdout
	}
	return &Output{cfg: cfg, w: w,
		events: promreg.Register(set.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_output_stdout_events_total", Help: "Events written to standard output."})),
	}, nil
}

// Start does nothing: the writer is always ready.
func (o *Output) Start(context.Context) error { return nil }

// Consume writes b's events and acks b.
func (o *Output) Consume(ctx context.Context, b *pipeline.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return errors.New("stdout output: Consume after Shutdown")
	}
	o.buf = jsonline.AppendBatch(o.buf[:0], b, o.cfg.Source)
	_, err := o.w.Write(o.buf)
	o.mu.Unlock()
	if err != nil {
		return fmt.Errorf("stdout output: write: %w", err)
	}
	o.events.Add(float64(b.Len()))
	if b.Ack != nil {
		b.Ack.Done(nil)
	}
	return nil
}

// Shutdown stops accepting batches; idempotent, safe without Start.
func (o *Output) Shutdown(context.Context) error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	return nil
}
