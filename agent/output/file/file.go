// Package file is the file output of sluice-agent: every event becomes one
// JSON line (see agent/output/internal/jsonline) appended to a file, with
// optional size-based rotation.
//
// Consume writes and fsyncs before acknowledging, on the caller's goroutine:
// a batch is acked with Done(nil) only once its lines are on disk, and a
// write that fails is rolled back (the file is truncated to its previous
// size) and returned as Consume's error, so the batch stays the caller's.
// Writing synchronously is the back-pressure: a slow disk slows the inputs.
package file

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/agent/output/internal/jsonline"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/internal/promreg"
)

// Config configures the file output.
type Config struct {
	// Path of the file lines are appended to; created (with its directory)
	// when missing.
	Path string
	// MaxBytes rotates the file once it reaches this size: Path becomes
	// Path.1, Path.1 becomes Path.2, and so on. 0 never rotates.
	MaxBytes int64
	// MaxBackups is how many rotated files are kept (default 5); older ones
	// are deleted.
	MaxBackups int
	// Source is written as __source__ for batches without one (the machine
	// address).
	Source string
}

// Validate checks c.
func (c *Config) Validate() error {
	if c.Path == "" {
		return errors.New("output.file.path: required: set the file to write JSON lines to")
	}
	if c.MaxBytes < 0 {
		return fmt.Errorf("output.file.max_bytes: %d is negative: use 0 to never rotate", c.MaxBytes)
	}
	if c.MaxBackups < 0 {
		return fmt.Errorf("output.file.max_backups: %d is negative", c.MaxBackups)
	}
	return nil
}

// Settings carry what the output needs from the agent.
type Settings struct {
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil registers nothing
}

// Output appends batches to a file. It implements pipeline.Consumer.
type Output struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	f      *os.File
	size   int64
	buf    []byte
	closed bool

	events, bytes, errs prometheus.Counter
}

// New returns an output for cfg; the file is opened by Start.
func New(cfg Config, set Settings) (*Output, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBackups == 0 {
		cfg.MaxBackups = 5
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	labels := prometheus.Labels{"path": cfg.Path}
	return &Output{
		cfg: cfg,
		log: log.With("output", "file", "path", cfg.Path),
		events: promreg.Register(set.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_output_file_events_total", Help: "Events written and fsynced.", ConstLabels: labels})),
		bytes: promreg.Register(set.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_output_file_bytes_total", Help: "Bytes written and fsynced.", ConstLabels: labels})),
		errs: promreg.Register(set.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_output_file_write_errors_total", Help: "Batches refused because the write or fsync failed.", ConstLabels: labels})),
	}, nil
}

// Start opens (or creates) the file for appending.
func (o *Output) Start(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil {
		return nil
	}
	if o.closed {
		return errors.New("file output: Start after Shutdown")
	}
	return o.open()
}

func (o *Output) open() error {
	if err := os.MkdirAll(filepath.Dir(o.cfg.Path), 0o755); err != nil {
		return fmt.Errorf("file output: create directory of %s: %w", o.cfg.Path, err)
	}
	f, err := os.OpenFile(o.cfg.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("file output: open %s: %w", o.cfg.Path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("file output: stat %s: %w", o.cfg.Path, err)
	}
	o.f, o.size = f, st.Size()
	return nil
}

// Consume writes b's events, fsyncs, then acks b with Done(nil). On error
// nothing of b stays in the file and b.Ack is not called.
func (o *Output) Consume(ctx context.Context, b *pipeline.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	err := o.write(b)
	o.mu.Unlock()
	if err != nil {
		o.errs.Inc()
		return err
	}
	o.events.Add(float64(b.Len()))
	if b.Ack != nil {
		b.Ack.Done(nil)
	}
	return nil
}

func (o *Output) write(b *pipeline.Batch) error {
	if o.closed {
		return errors.New("file output: Consume after Shutdown")
	}
	if o.f == nil {
		return errors.New("file output: Consume before Start")
	}
	o.buf = jsonline.AppendBatch(o.buf[:0], b, o.cfg.Source)
	if len(o.buf) == 0 {
		return nil
	}
	if o.cfg.MaxBytes > 0 && o.size > 0 && o.size+int64(len(o.buf)) > o.cfg.MaxBytes {
		if err := o.rotate(); err != nil {
			return err
		}
	}
	n, err := o.f.Write(o.buf)
	if err == nil {
		err = o.f.Sync()
	}
	if err != nil {
		// Roll back a partial write so the file never holds half a batch
		// that the caller will send again.
		if n > 0 {
			if terr := o.f.Truncate(o.size); terr != nil {
				o.log.Error("cannot roll back a failed write; the file may hold a partial line", "err", terr)
			}
		}
		return fmt.Errorf("file output: write %s: %w", o.cfg.Path, err)
	}
	o.size += int64(n)
	o.bytes.Add(float64(n))
	return nil
}

// rotate renames Path to Path.1 (shifting older backups) and opens a new
// file.
func (o *Output) rotate() error {
	if err := o.f.Close(); err != nil {
		o.log.Warn("close before rotation", "err", err)
	}
	o.f = nil
	_ = os.Remove(fmt.Sprintf("%s.%d", o.cfg.Path, o.cfg.MaxBackups))
	for i := o.cfg.MaxBackups - 1; i >= 1; i-- {
		err := os.Rename(fmt.Sprintf("%s.%d", o.cfg.Path, i), fmt.Sprintf("%s.%d", o.cfg.Path, i+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("file output: rotate %s: %w", o.cfg.Path, err)
		}
	}
	if err := os.Rename(o.cfg.Path, o.cfg.Path+".1"); err != nil {
		return fmt.Errorf("file output: rotate %s: %w", o.cfg.Path, err)
	}
	return o.open()
}

// Shutdown closes the file. Every batch acked was already fsynced, so there
// is nothing to flush. It is idempotent and safe without Start.
func (o *Output) Shutdown(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	if o.f == nil {
		return nil
	}
	err := o.f.Close()
	o.f = nil
	if err != nil {
		return fmt.Errorf("file output: close %s: %w", o.cfg.Path, err)
	}
	return nil
}
