package file_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/agent/output/file"
	"github.com/sluicelog/sluice/agent/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type ackRecorder struct{ errs []error }

func (a *ackRecorder) Done(err error) { a.errs = append(a.errs, err) }

func batch(n int, ack pipeline.Ack) *pipeline.Batch {
	b := pipeline.NewBatch()
	b.Topic = "t"
	b.AddTag("__path__", "/var/log/app.log")
	for i := range n {
		b.BeginEvent(uint32(1700000000+i), 0)
		b.AddField("content", fmt.Appendf(nil, "line %d", i))
		b.EndEvent()
	}
	b.Ack = ack
	return b
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		out = append(out, m)
	}
	return out
}

func TestWritesAndAcksAfterFsync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "out.jsonl")
	reg := prometheus.NewRegistry()
	o, err := file.New(file.Config{Path: path, Source: "10.1.2.3"}, file.Settings{Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, o.Start(context.Background()))

	ack := &ackRecorder{}
	b := batch(3, pipeline.AckFunc(func(err error) {
		// The lines are already in the file when the ack arrives.
		require.Len(t, readLines(t, path), 3)
		ack.Done(err)
	}))
	require.NoError(t, o.Consume(context.Background(), b))
	require.Equal(t, []error{nil}, ack.errs)
	b.Reset() // the producer reuses the batch; the file must not change

	lines := readLines(t, path)
	require.Equal(t, "line 2", lines[2]["content"])
	require.Equal(t, "10.1.2.3", lines[0]["__source__"])
	require.Equal(t, "/var/log/app.log", lines[0]["__tag__:__path__"])
	require.Equal(t, 1, testutil.CollectAndCount(reg, "sluice_output_file_events_total"))
	require.NoError(t, o.Shutdown(context.Background()))
	require.NoError(t, o.Shutdown(context.Background()), "idempotent")
	require.Error(t, o.Consume(context.Background(), batch(1, nil)))

	// A new instance appends to the same file.
	o2, err := file.New(file.Config{Path: path}, file.Settings{Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, o2.Start(context.Background()))
	require.NoError(t, o2.Consume(context.Background(), batch(2, nil)))
	require.NoError(t, o2.Shutdown(context.Background()))
	require.Len(t, readLines(t, path), 5)
}

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	o, err := file.New(file.Config{Path: path, MaxBytes: 1000, MaxBackups: 2}, file.Settings{})
	require.NoError(t, err)
	require.NoError(t, o.Start(context.Background()))
	for range 40 {
		require.NoError(t, o.Consume(context.Background(), batch(3, nil)))
	}
	require.NoError(t, o.Shutdown(context.Background()))
	total := 0
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.LessOrEqual(t, st.Size(), int64(1000))
		total += len(readLines(t, p))
	}
	require.NoFileExists(t, path+".3")
	require.Greater(t, total, 9)
}

func TestWriteFailureIsReturnedNotAcked(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	o, err := file.New(file.Config{Path: "/dev/full"}, file.Settings{})
	require.NoError(t, err)
	require.NoError(t, o.Start(context.Background()))
	acked := false
	err = o.Consume(context.Background(), batch(1, pipeline.AckFunc(func(error) { acked = true })))
	require.Error(t, err)
	require.Contains(t, err.Error(), "/dev/full")
	require.False(t, acked, "a batch refused with an error must not be acked")
	require.NoError(t, o.Shutdown(context.Background()))
}

func TestValidateAndLifecycle(t *testing.T) {
	_, err := file.New(file.Config{}, file.Settings{})
	require.ErrorContains(t, err, "output.file.path")
	o, err := file.New(file.Config{Path: filepath.Join(t.TempDir(), "x")}, file.Settings{})
	require.NoError(t, err)
	require.Error(t, o.Consume(context.Background(), batch(1, nil)), "before Start")
	require.NoError(t, o.Shutdown(context.Background()), "safe without Start")
}
