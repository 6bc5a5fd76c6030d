// Package mocklog generates realistic log lines (nginx, JSON, apsara, Java
// with multiline stack traces) at a given rate into a writer or a rotating
// file. Every event carries a sequence number (ParseSeq finds it), so tests
// and benchmarks can prove a collector lost nothing across rotations.
//
// It is written by hand because the job is narrow and speed matters: events
// are appended to a reused buffer with strconv (no fmt, no allocation per
// event) and written in batches, so generation runs at hundreds of MB/s and
// a 1 GiB bench file takes seconds.
package mocklog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"
)

// Rotation modes.
const (
	RotateRename       = "rename"       // path → path.1 → path.2 …, new path
	RotateCopyTruncate = "copytruncate" // copy path to path.1, truncate path
)

// Options configure a Generator. Writer, Path or both are set: with both,
// every event goes to the file and to the writer, as mock_log's --path with
// --stdout or --stderr.
type Options struct {
	// LogType is nginx, json, apsara or java-multiline.
	LogType string
	// Writer receives the events (stdout, a buffer, a pipe).
	Writer io.Writer
	// Path is a file to append to; RotateBytes > 0 rotates it once it has
	// reached that size, in RotateMode, keeping RotateKeep old files.
	Path        string
	RotateBytes int64
	RotateMode  string // default rename
	RotateKeep  int    // old files kept: path.1 … path.N
	// TotalCount stops after this many events; 0 = no limit.
	TotalCount uint64
	// Size stops at the first event boundary at or after this many bytes;
	// 0 = no limit.
	Size int64
	// LogsPerSec is the event rate; 0 = as fast as possible.
	LogsPerSec float64
	// FirstSeq is the first sequence number; sequence numbers go up by one
	// per event.
	FirstSeq uint64
	// Seed makes the content (not the timestamps) reproducible.
	Seed uint64
	// Now gives event timestamps; time.Now when nil.
	Now func() time.Time
	// Container, when set, wraps every line as a container runtime stores
	// it: ContainerCRI or ContainerDockerJSON, labelled with Stream (stdout
	// when empty) and split into partial records above PartialBytes
	// (DefaultPartialBytes when 0).
	Container    string
	Stream       string
	PartialBytes int
}

// Stats report what a Generator wrote.
type Stats struct {
	Events    uint64 // events written (java-multiline events span several lines)
	Lines     uint64 // lines the app wrote (before container wrapping)
	Bytes     uint64
	NextSeq   uint64 // sequence number of the next event; events used FirstSeq … NextSeq-1
	Rotations uint64
	Elapsed   time.Duration
}

// String is the summary line mocklog prints.
func (s Stats) String() string {
	sec := s.Elapsed.Seconds()
	if sec <= 0 {
		sec = 1e-9
	}
	return fmt.Sprintf("%d events, %d lines, %d bytes (%.1f MiB) in %.3fs: %.0f events/s, %.1f MiB/s, %d rotations",
		s.Events, s.Lines, s.Bytes, float64(s.Bytes)/(1<<20), s.Elapsed.Seconds(),
		float64(s.Events)/sec, float64(s.Bytes)/(1<<20)/sec, s.Rotations)
}

// Generator writes events. It is not safe for concurrent use.
type Generator struct {
	opts    Options
	format  formatter
	wrap    wrapper
	wrapBuf []byte
	rnd     *rand.Rand
	clk     clock
	buf     []byte
	stats   Stats
}

// batchBytes is how much is generated before one write: big enough that the
// write syscall is amortised, small enough to stay in cache.
const batchBytes = 256 << 10

// New checks opts and returns a Generator.
func New(opts Options) (*Generator, error) {
	var errs []error
	f := formatterFor(opts.LogType)
	if f == nil {
		errs = append(errs, fmt.Errorf("log type %q is unknown: use one of %s", opts.LogType, strings.Join(LogTypes(), ", ")))
	}
	if opts.Writer == nil && opts.Path == "" {
		errs = append(errs, errors.New("set an output: a path, a writer (stdout/stderr) or both"))
	}
	if opts.RotateMode == "" {
		opts.RotateMode = RotateRename
	}
	if opts.RotateMode != RotateRename && opts.RotateMode != RotateCopyTruncate {
		errs = append(errs, fmt.Errorf("rotate mode %q is unknown: use %s or %s", opts.RotateMode, RotateRename, RotateCopyTruncate))
	}
	if opts.RotateBytes < 0 || opts.RotateKeep < 0 || opts.Size < 0 || opts.LogsPerSec < 0 {
		errs = append(errs, errors.New("rotate bytes, rotate keep, size and logs per second must not be negative"))
	}
	w := wrapperFor(opts.Container)
	if opts.Container != "" && w == nil {
		errs = append(errs, fmt.Errorf("container format %q is unknown: use %s or %s", opts.Container, ContainerCRI, ContainerDockerJSON))
	}
	if opts.Stream == "" {
		opts.Stream = "stdout"
	}
	if opts.Stream != "stdout" && opts.Stream != "stderr" {
		errs = append(errs, fmt.Errorf("stream %q is unknown: use stdout or stderr", opts.Stream))
	}
	if opts.PartialBytes == 0 {
		opts.PartialBytes = DefaultPartialBytes
	}
	if opts.PartialBytes < 0 {
		errs = append(errs, errors.New("partial bytes must be positive"))
	}
	if opts.RotateBytes > 0 && opts.Path == "" {
		errs = append(errs, errors.New("rotation needs a file: set a path"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Generator{
		opts:   opts,
		format: f,
		wrap:   w,
		rnd:    rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		buf:    make([]byte, 0, batchBytes+64<<10),
		stats:  Stats{NextSeq: opts.FirstSeq},
	}, nil
}

// Stats returns what has been written so far.
func (g *Generator) Stats() Stats { return g.stats }

// Run writes events until TotalCount or Size is reached, or ctx is done.
// Every event generated is written whole before Run returns, so events
// FirstSeq … Stats().NextSeq-1 are all in the output. It returns ctx.Err()
// when stopped by ctx.
func (g *Generator) Run(ctx context.Context) error {
	out, err := g.open()
	if err != nil {
		return err
	}
	start := time.Now()
	err = g.loop(ctx, out, start)
	g.stats.Elapsed = time.Since(start)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if t, ok := out.(teeSink); ok {
		out = t.file
	}
	if fs, ok := out.(*fileSink); ok {
		g.stats.Rotations = fs.rotations
	}
	return err
}

func (g *Generator) open() (sink, error) {
	if g.opts.Path == "" {
		return writerSink{g.opts.Writer}, nil
	}
	fs, err := openFileSink(g.opts.Path, g.opts.RotateBytes, g.opts.RotateMode, g.opts.RotateKeep)
	if err != nil || g.opts.Writer == nil {
		return fs, err
	}
	return teeSink{fs, writerSink{g.opts.Writer}}, nil
}

// done reports whether the count or size limit is reached.
func (g *Generator) done() bool {
	return (g.opts.TotalCount > 0 && g.stats.Events >= g.opts.TotalCount) ||
		(g.opts.Size > 0 && int64(g.stats.Bytes) >= g.opts.Size)
}

func (g *Generator) loop(ctx context.Context, out sink, start time.Time) error {
	rate := g.opts.LogsPerSec
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for !g.done() {
		if err := ctx.Err(); err != nil {
			return err
		}
		budget := uint64(1 << 62)
		if rate > 0 {
			// Events due by now: event k (from 0) is due at start + k/rate.
			due := uint64(rate*time.Since(start).Seconds()) + 1
			if due <= g.stats.Events {
				wait := time.Until(start.Add(time.Duration(float64(g.stats.Events) / rate * float64(time.Second))))
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-timer.C:
				}
				continue
			}
			budget = due - g.stats.Events
		}
		if err := g.batch(out, budget); err != nil {
			return err
		}
	}
	return nil
}

// batch generates up to budget events (fewer at a limit, a full buffer or
// the rotation size) and writes them with one Write.
func (g *Generator) batch(out sink, budget uint64) error {
	g.clk.set(g.opts.Now())
	buf := g.buf[:0]
	var events, lines uint64
	room := out.room()
	for events < budget {
		// At least one event per batch, even when a file left by an earlier
		// run is already past the rotation size: writing it rotates.
		if events > 0 && (len(buf) >= batchBytes || int64(len(buf)) >= room) {
			break
		}
		if g.opts.TotalCount > 0 && g.stats.Events+events >= g.opts.TotalCount {
			break
		}
		if g.opts.Size > 0 && int64(g.stats.Bytes)+int64(len(buf)) >= g.opts.Size {
			break
		}
		var n int
		if g.wrap != nil {
			g.wrapBuf, n = g.format(g.wrapBuf[:0], g.stats.NextSeq+events, &g.clk, g.rnd)
			buf = wrapEvent(buf, g.wrapBuf, g.wrap, &g.clk, g.opts.Stream, g.opts.PartialBytes)
		} else {
			buf, n = g.format(buf, g.stats.NextSeq+events, &g.clk, g.rnd)
		}
		events++
		lines += uint64(n)
	}
	g.buf = buf
	if err := out.write(buf); err != nil {
		return err
	}
	g.stats.Events += events
	g.stats.Lines += lines
	g.stats.Bytes += uint64(len(buf))
	g.stats.NextSeq += events
	return nil
}
