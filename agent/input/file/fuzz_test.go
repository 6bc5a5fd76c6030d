package file

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/pipeline"
)

// FuzzReadLines feeds arbitrary file content through the line reader with a
// small max line size and checks that nothing is lost or invented: the
// events and the newlines between them add up to the bytes read, no event
// is longer than the limit, and the last acknowledged offset is the end of
// the last complete line.
func FuzzReadLines(f *testing.F) {
	f.Add([]byte("a\nb\n"))
	f.Add([]byte("no newline"))
	f.Add([]byte("\n\n\n"))
	f.Add(bytes.Repeat([]byte("x"), 300))
	f.Add([]byte("é\xff\xfe\n" + string(bytes.Repeat([]byte("é"), 100)) + "\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		data = bytes.ReplaceAll(data, []byte("\r"), nil) // \r\n stripping is tested elsewhere
		path := filepath.Join(dir, "fuzz.log")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var events [][]byte
		var lastEnd int64
		next := pipeline.ConsumerFunc(func(_ context.Context, b *pipeline.Batch) error {
			for _, e := range b.Events {
				events = append(events, []byte(e.Fields[0].Value))
			}
			b.Ack.Done(nil)
			return nil
		})
		store, _ := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
		cfg := testConfig(dir)
		cfg.MaxReadBufferSize = 1024
		cfg.MaxBatchEvents = 3
		in, err := New(cfg, next, Settings{Checkpoints: store})
		if err != nil {
			t.Fatal(err)
		}
		w := newWorker(in)
		w.ctx = context.Background()
		fd, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fd.Close()
		tf := &tracked{input: in, fd: fd, init: true, tagPath: path}
		tf.win.prepare()
		tf.win.put = func(e checkpoint.Entry) { lastEnd = e.Offset }
		w.cur = tf
		var leftover int
		for tf.readOff.Load() < int64(len(data)) {
			before := tf.readOff.Load()
			leftover = w.readLoop(tf)
			if tf.readOff.Load() == before {
				break
			}
		}
		_ = w.send(tf)
		complete := bytes.LastIndexByte(data, '\n') + 1
		if leftover != len(data)-int(tf.readOff.Load()) {
			t.Fatalf("leftover %d, want %d", leftover, len(data)-int(tf.readOff.Load()))
		}
		total := 0
		for _, e := range events {
			if len(e) > cfg.MaxReadBufferSize {
				t.Fatalf("event of %d bytes exceeds the limit", len(e))
			}
			total += len(e)
		}
		newlines := bytes.Count(data[:tf.readOff.Load()], []byte("\n"))
		if total+newlines != int(tf.readOff.Load()) {
			t.Fatalf("events %d bytes + %d newlines != %d bytes read", total, newlines, tf.readOff.Load())
		}
		if int(tf.readOff.Load()) < complete || lastEnd != tf.readOff.Load() {
			t.Fatalf("read to %d, acked to %d, complete lines end at %d", tf.readOff.Load(), lastEnd, complete)
		}
	})
}
