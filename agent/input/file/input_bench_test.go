package file

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/pipeline"
)

// nullConsumer acknowledges every batch at once, like an output whose disk
// buffer never fills.
var nullConsumer = pipeline.ConsumerFunc(func(_ context.Context, b *pipeline.Batch) error {
	b.Ack.Done(nil)
	return nil
})

func benchInput(b *testing.B, cfg Config) *Input {
	b.Helper()
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	if err != nil {
		b.Fatal(err)
	}
	in, err := New(cfg, nullConsumer, Settings{Checkpoints: store})
	if err != nil {
		b.Fatal(err)
	}
	return in
}

// BenchmarkReadLines reads a 64 MiB file of 120-byte lines into a consumer
// that acks at once: the per-line cost of reading, splitting and batching.
func BenchmarkReadLines(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "big.log")
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	pad := strings.Repeat("x", 80)
	lines := 0
	for size := 0; size < 64<<20; lines++ {
		n, _ := fmt.Fprintf(bw, "2026-11-23 10:40:00.000 INFO request id=%08d %s\n", lines, pad)
		size += n
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	_ = out.Close()
	st, _ := os.Stat(path)
	size := st.Size()

	in := benchInput(b, testConfig(dir))
	w := newWorker(in)
	w.ctx = context.Background()
	fd, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer fd.Close()
	f := &tracked{input: in, fd: fd, init: true, tagPath: path}
	head := make([]byte, checkpoint.SignatureMax)
	n, _ := fd.ReadAt(head, 0)
	f.sig = checkpoint.Sign(head[:n]) // each read checks the file still starts so
	f.win.prepare()
	w.cur = f
	// Warm the page cache and the batch arena.
	for f.readOff.Load() < size {
		w.readLoop(f)
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		f.readOff.Store(0)
		w.cur = f
		for f.readOff.Load() < size {
			w.readLoop(f)
		}
		_ = w.send(f)
		w.flushCounters()
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(size)*float64(b.N)/(1<<20)/cpu.Seconds(), "MiB/cpu-s")
	b.ReportMetric(float64(lines), "lines/op")
}

// BenchmarkDiscoveryPass is one steady-state discovery pass over 10,000
// files in 100 directories, none of them growing: readdir per directory,
// no file opened or read. "recent": every file grew less than a minute ago
// and is stat'ed each pass; "idle": none grew for an hour and each is
// stat'ed every tenth pass.
func BenchmarkDiscoveryPass(b *testing.B) {
	b.Run("recent", func(b *testing.B) { benchDiscovery(b, 0) })
	b.Run("idle", func(b *testing.B) { benchDiscovery(b, time.Hour) })
}

func benchDiscovery(b *testing.B, idle time.Duration) {
	dir := b.TempDir()
	for d := range 100 {
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range 100 {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d.log", i)), []byte("x\n"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	cfg := testConfig(dir)
	cfg.MaxDepth = 1
	cfg.PollInterval = time.Hour // the benchmark drives the passes
	cfg.CloseInactive = time.Millisecond
	in := benchInput(b, cfg)
	if err := in.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = in.Shutdown(context.Background()) }()
	// Let the readers see every file once, then reach the idle state.
	deadline := time.Now().Add(time.Minute)
	for {
		time.Sleep(50 * time.Millisecond)
		in.scan(false)
		in.mu.Lock()
		ready := len(in.all) == 10000
		for f := range in.all {
			if !f.init || f.busy || f.queued || f.fd != nil {
				ready = false
				break
			}
		}
		in.mu.Unlock()
		if ready {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("files not settled")
		}
	}
	in.mu.Lock()
	for f := range in.all {
		f.lastGrow.Store(time.Now().Add(-idle).UnixNano())
	}
	in.mu.Unlock()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	stats0 := in.stats
	b.ReportAllocs()
	for b.Loop() {
		in.scan(false)
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/pass")
	b.ReportMetric(float64(in.stats-stats0)/float64(b.N), "stats/pass")
}

// BenchmarkInputEndToEnd runs the whole input (discovery, first sight,
// readers, ack tracking, checkpoint puts) over a 64 MiB file into a consumer
// that acks at once, and reports CPU time of the whole process per MiB.
func BenchmarkInputEndToEnd(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src.data")
	out, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	pad := strings.Repeat("y", 80)
	lines := 0
	for size := 0; size < 64<<20; lines++ {
		n, _ := fmt.Fprintf(bw, "2026-11-23 10:40:00.000 INFO request id=%08d %s\n", lines, pad)
		size += n
	}
	_ = bw.Flush()
	_ = out.Close()
	st, _ := os.Stat(src)
	b.SetBytes(st.Size())
	b.ReportAllocs()
	var cpu time.Duration
	i := 0
	for b.Loop() {
		i++
		logDir := filepath.Join(dir, fmt.Sprint("run", i))
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.Link(src, filepath.Join(logDir, "app.log")); err != nil {
			b.Fatal(err)
		}
		var got atomicInt
		next := pipeline.ConsumerFunc(func(_ context.Context, bt *pipeline.Batch) error {
			got.add(bt.Len())
			bt.Ack.Done(nil)
			return nil
		})
		store, _ := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
		cfg := testConfig(logDir)
		cfg.TailSizeKB = 1 << 20
		in, err := New(cfg, next, Settings{Checkpoints: store})
		if err != nil {
			b.Fatal(err)
		}
		var ru0, ru1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		_ = in.Start(context.Background())
		for got.load() < lines {
			time.Sleep(time.Millisecond)
		}
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu += time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		_ = in.Shutdown(context.Background())
	}
	b.ReportMetric(float64(st.Size())*float64(b.N)/(1<<20)/cpu.Seconds(), "MiB/cpu-s")
}
