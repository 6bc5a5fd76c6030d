package file

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/agent/pipeline/pipelinetest"
)

// Tests of a file's life from discovery to tombstone: where reading starts,
// what the checkpoint holds when, and how rotated, compressed and vanished
// files are handled across restarts.

// logBuffer collects an input's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLogged starts an input like start, its log in the returned buffer.
func startLogged(t *testing.T, cfg Config, store *checkpoint.Store, s *pipelinetest.Recorder) (*harness, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if store == nil {
		var err error
		store, err = checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
		require.NoError(t, err)
	}
	if s == nil {
		s = &pipelinetest.Recorder{}
	}
	reg := prometheus.NewRegistry()
	in, err := New(cfg, s, Settings{Registerer: reg, Checkpoints: store,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	require.NoError(t, err)
	require.NoError(t, in.Start(context.Background()))
	h := &harness{t: t, in: in, sink: s, store: store, reg: reg}
	t.Cleanup(h.stop)
	return h, logs
}

// fileStore is a checkpoint store on disk that is not written in the
// background: what is in the file is what the input flushed itself.
func fileStore(t *testing.T, path string) *checkpoint.Store {
	t.Helper()
	s, err := checkpoint.New(checkpoint.Config{Path: path, Interval: time.Hour}, checkpoint.Settings{})
	require.NoError(t, err)
	return s
}

// agentStore is a checkpoint store on disk written in the background as
// the agent's is (DefaultDelay after a change), until the test ends.
func agentStore(t *testing.T, path string) *checkpoint.Store {
	t.Helper()
	s, err := checkpoint.New(checkpoint.Config{Path: path, Interval: 5 * time.Second}, checkpoint.Settings{})
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// onDisk is the checkpoint file's entries of config "cfg".
func onDisk(t *testing.T, path string) []checkpoint.Entry {
	t.Helper()
	s, err := checkpoint.New(checkpoint.Config{Path: path, Interval: time.Hour}, checkpoint.Settings{})
	if err != nil {
		return nil
	}
	return s.Entries("cfg")
}

func numbered(prefix string, from, to int) (string, []string) {
	var sb strings.Builder
	var lines []string
	for i := from; i < to; i++ {
		l := fmt.Sprintf("%s %05d %s", prefix, i, strings.Repeat("x", 40))
		sb.WriteString(l + "\n")
		lines = append(lines, l)
	}
	return sb.String(), lines
}

func gzipFile(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(data)
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path+".gz", buf.Bytes(), 0o644))
	require.NoError(t, os.Remove(path))
}

// waitAll waits until every line in want arrived and checks that each
// arrived exactly once and nothing else did.
func waitAll(t *testing.T, h *harness, want []string) {
	t.Helper()
	require.Eventually(t, func() bool { return len(h.sink.Contents()) >= len(want) }, 10*time.Second, 5*time.Millisecond,
		"%d of %d lines", len(h.sink.Contents()), len(want))
	time.Sleep(150 * time.Millisecond) // nothing more may arrive
	require.ElementsMatch(t, want, h.sink.Contents())
}

// The first finding: a file created after the agent started was
// read from its last MiB like a file that existed at start.
func TestNewFileAfterStartIsReadFromItsStart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.TailSizeKB = 1
	old, _ := numbered("old", 0, 200) // 10 KiB, present at the first start
	writeFile(t, filepath.Join(dir, "old.log"), old)
	h, logs := startLogged(t, cfg, nil, nil)
	require.Eventually(t, func() bool { return len(h.sink.Contents()) > 0 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	tailed := len(h.sink.Contents())
	require.Less(t, tailed, 200, "a file present at the very first start is read from its last tail_size_kb")
	require.Contains(t, logs.String(), "level=INFO msg=\"file existed before the config first started: reading its last tail_size_kb\"")
	require.Contains(t, logs.String(), "skipped_bytes=")

	data, want := numbered("new", 0, 200) // 10 KiB > tail_size_kb, written at once
	writeFile(t, filepath.Join(dir, "new.log"), data)
	require.Eventually(t, func() bool { return len(h.sink.Contents()) == tailed+200 }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, want, h.sink.Contents()[tailed:])
	require.Zero(t, counter(t, h.in.m.lostBytes))
}

// The existing-files rules apply at the config's very first start only: a
// file that appeared while the agent was down is new, whatever its size.
func TestExistingFilesRulesOnlyAtFirstStart(t *testing.T) {
	dir := t.TempDir()
	cp := filepath.Join(t.TempDir(), "cp.json")
	cfg := testConfig(dir)
	cfg.TailSizeKB = 1
	cfg.TailExisted = false
	h1 := start(t, cfg, fileStore(t, cp), nil, nil)
	time.Sleep(100 * time.Millisecond) // an empty directory: nothing to read
	h1.stop()

	data, want := numbered("while down", 0, 300)
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, data)
	long := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(path, long, long)) // old, and larger than tail_size_kb
	h2 := start(t, cfg, fileStore(t, cp), nil, nil)
	waitAll(t, h2, want)
	require.Zero(t, counter(t, h2.in.m.skippedBytes.WithLabelValues("tail")))
	require.Zero(t, counter(t, h2.in.m.skippedBytes.WithLabelValues("existing")))
}

// A config that matches other files than before (a changed filePattern)
// treats the files it now matches as existing ones.
func TestChangedPatternAppliesExistingRulesToNewlyMatchedFiles(t *testing.T) {
	dir := t.TempDir()
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	cfg := testConfig(dir)
	cfg.TailSizeKB = 1
	cfg.FilePattern = "a.log"
	h1 := start(t, cfg, store, nil, nil)
	time.Sleep(100 * time.Millisecond)
	h1.stop()
	data, _ := numbered("b", 0, 200)
	writeFile(t, filepath.Join(dir, "b.log"), data)
	cfg.FilePattern = "*.log"
	h2 := start(t, cfg, store, nil, nil)
	require.Eventually(t, func() bool { return len(h2.sink.Contents()) > 0 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	require.Less(t, len(h2.sink.Contents()), 200, "b.log was there when the config began to match it: tail rule")
	require.Positive(t, counter(t, h2.in.m.skippedBytes.WithLabelValues("tail")))
}

// blockingConsumer takes batches and never acknowledges them (an output
// that is stuck), so positions never advance.
func blockingConsumer() pipeline.Consumer {
	return pipeline.ConsumerFunc(func(context.Context, *pipeline.Batch) error { return nil })
}

// The second finding: the checkpoint was first written one
// interval after start, so an agent killed earlier forgot everything. Now
// the files found by the first pass are on disk at once, before any batch
// is acknowledged.
func TestCheckpointWrittenRightAfterFirstPass(t *testing.T) {
	dir := t.TempDir()
	cp := filepath.Join(t.TempDir(), "cp.json")
	writeFile(t, filepath.Join(dir, "a.log"), "a\n")
	writeFile(t, filepath.Join(dir, "b.log"), "b\n")
	store := fileStore(t, cp) // never written in the background
	in, err := New(testConfig(dir), blockingConsumer(), Settings{Checkpoints: store})
	require.NoError(t, err)
	require.NoError(t, in.Start(context.Background()))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = in.Shutdown(ctx)
	}()
	require.Eventually(t, func() bool {
		s, err := checkpoint.New(checkpoint.Config{Path: cp, Interval: time.Hour}, checkpoint.Settings{})
		if err != nil || len(s.Entries("cfg")) != 2 {
			return false
		}
		_, started := s.Config("cfg")
		return started
	}, 5*time.Second, 5*time.Millisecond, "both files and the config's start on disk")
}

// A file's identity and start are in the checkpoint store from discovery,
// before a reader got to it or anything was acknowledged.
func TestEntryRecordedAtDiscovery(t *testing.T) {
	dir := t.TempDir()
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	in, err := New(testConfig(dir), blockingConsumer(), Settings{Checkpoints: store})
	require.NoError(t, err)
	require.NoError(t, in.Start(context.Background()))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = in.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond)
	path := filepath.Join(dir, "late.log")
	writeFile(t, path, "one\ntwo\n")
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		es := store.Entries("cfg")
		return len(es) == 1 && es[0].File == fileIDOf(t, st) && es[0].Offset == 0
	}, 5*time.Second, 5*time.Millisecond)
}

// crashStop stops an input without waiting for acknowledgements, like a
// kill after the checkpoint's last write.
func crashStop(t *testing.T, in *Input) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = in.Shutdown(ctx)
}

// The third finding: a rotated file found but not yet read was
// forgotten by a crash, and an older unread one between newer ones skipped.
func TestFoundButUnreadRotatedFilesSurviveACrash(t *testing.T) {
	dir := t.TempDir()
	cp := filepath.Join(t.TempDir(), "cp.json")
	cfg := testConfig(dir)
	cfg.FilePattern = "app.log*"
	in, err := New(cfg, blockingConsumer(), Settings{Checkpoints: agentStore(t, cp)})
	require.NoError(t, err)
	require.NoError(t, in.Start(context.Background()))
	time.Sleep(50 * time.Millisecond)
	var want []string
	for i, name := range []string{"app.log.3", "app.log.2", "app.log.1", "app.log"} {
		data, lines := numbered(name, i*100, i*100+100)
		writeFile(t, filepath.Join(dir, name), data)
		want = append(want, lines...)
	}
	require.Eventually(t, func() bool { return len(onDisk(t, cp)) == 4 }, 5*time.Second, 5*time.Millisecond,
		"all four files on disk within the write delay, before anything was acknowledged")
	crashStop(t, in)

	h := start(t, cfg, fileStore(t, cp), nil, nil)
	waitAll(t, h, want)
}

// Renamed out of the pattern, compressed and the original deleted while
// the agent was down: the rest of the file is read from the compressed
// copy, from the checkpointed offset.
func TestCompressedWhileDownResumesInCopy(t *testing.T) {
	dir := t.TempDir()
	cp := filepath.Join(t.TempDir(), "cp.json")
	cfg := testConfig(dir)
	cfg.FilePattern = "app.log"
	path := filepath.Join(dir, "app.log")
	first, want1 := numbered("first", 0, 100)
	h1 := start(t, cfg, fileStore(t, cp), nil, nil)
	writeFile(t, path, first)
	waitAll(t, h1, want1)
	h1.stop()

	rest, want := numbered("written before the rotation", 0, 50)
	appendFile(t, path, rest)
	require.NoError(t, os.Rename(path, path+".1"))
	gzipFile(t, path+".1")
	fresh, lines := numbered("new file", 0, 20)
	writeFile(t, path, fresh)
	want = append(want, lines...)

	h2, logs := startLogged(t, cfg, fileStore(t, cp), nil)
	waitAll(t, h2, want)
	// Found by content (or, when the new file got the old inode, as the
	// copy of the old content).
	require.Regexp(t, `(resuming a file rotated and compressed while the agent was down|reading the rest of its previous content from the copy).*copy=`+
		regexpQuote(path+".1.gz"), logs.String())
	require.Zero(t, counter(t, h2.in.m.lostBytes))
}

// Files that lived and were compressed entirely while the agent was down
// are read from their compressed copy; compressed copies of files already
// read are not read again.
func TestUnknownCompressedFilesAreReadKnownOnesNot(t *testing.T) {
	dir := t.TempDir()
	cp := filepath.Join(t.TempDir(), "cp.json")
	cfg := testConfig(dir)
	cfg.FilePattern = "app.log"
	path := filepath.Join(dir, "app.log")
	data, want1 := numbered("read before the stop", 0, 100)
	h1 := start(t, cfg, fileStore(t, cp), nil, nil)
	writeFile(t, path, data)
	waitAll(t, h1, want1)
	h1.stop()

	require.NoError(t, os.Rename(path, path+"-1"))
	gzipFile(t, path+"-1") // all of it was read
	unseen, want := numbered("never seen", 0, 80)
	writeFile(t, path, unseen)
	require.NoError(t, os.Rename(path, path+"-2"))
	gzipFile(t, path+"-2")
	cur, lines := numbered("current", 0, 10)
	writeFile(t, path, cur)
	want = append(want, lines...)

	h2 := start(t, cfg, fileStore(t, cp), nil, nil)
	waitAll(t, h2, want)
}

// A rotation storm while the agent runs: each file lives for a few
// milliseconds, is renamed, compressed and deleted at once. inotify finds
// each file when it is created and its descriptor keeps it readable, so
// every line arrives exactly once and nothing is counted lost.
func TestRotationStormWithCompressionLosesNothing(t *testing.T) {
	// app.log* also matches the renamed files (app.log.7): the input
	// follows each to its new path, and its compressed copy is named
	// after that path.
	for _, pattern := range []string{"app.log", "app.log*"} {
		t.Run(pattern, func(t *testing.T) { rotationStormWithCompression(t, pattern) })
	}
}

func rotationStormWithCompression(t *testing.T, pattern string) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.FilePattern = pattern
	cfg.PollInterval = time.Second // inotify, not polling, finds the files
	h := start(t, cfg, nil, nil, nil, func(in *Input) { in.orphanGrace = 300 * time.Millisecond })
	path := filepath.Join(dir, "app.log")
	time.Sleep(50 * time.Millisecond)
	var want []string
	for r := range 100 {
		data, lines := numbered(fmt.Sprintf("rotation %03d", r), 0, 50)
		writeFile(t, path, data)
		want = append(want, lines...)
		rotated := fmt.Sprintf("%s.%d", path, r)
		require.NoError(t, os.Rename(path, rotated))
		gzipFile(t, rotated)
	}
	data, lines := numbered("last", 0, 5)
	writeFile(t, path, data)
	want = append(want, lines...)
	require.Eventually(t, func() bool { return len(h.sink.Contents()) >= len(want) }, 20*time.Second, 10*time.Millisecond,
		"%d of %d lines", len(h.sink.Contents()), len(want))
	time.Sleep(300 * time.Millisecond)
	require.ElementsMatch(t, want, h.sink.Contents())
	// Files renamed before they could be opened were found under their
	// new names or as compressed copies: none is counted lost.
	require.Eventually(t, func() bool {
		h.in.mu.Lock()
		defer h.in.mu.Unlock()
		return len(h.in.orphans) == 0
	}, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, counter(t, h.in.m.lostBytes))
}

// A file that was found, not read, and deleted while the agent was down is
// lost: counted with its size, and logged at WARN with its path.
func TestFileRemovedWhileUnreadIsCountedLost(t *testing.T) {
	dir := t.TempDir()
	cp := filepath.Join(t.TempDir(), "cp.json")
	cfg := testConfig(dir)
	path := filepath.Join(dir, "doomed.log")
	data, _ := numbered("never delivered", 0, 40)
	in, err := New(cfg, blockingConsumer(), Settings{Checkpoints: agentStore(t, cp)})
	require.NoError(t, err)
	require.NoError(t, in.Start(context.Background()))
	time.Sleep(50 * time.Millisecond)
	writeFile(t, path, data)
	require.Eventually(t, func() bool {
		es := onDisk(t, cp)
		return len(es) == 1 && es[0].Size == int64(len(data))
	}, 5*time.Second, 5*time.Millisecond)
	crashStop(t, in)
	require.NoError(t, os.Remove(path))

	h, logs := startLogged(t, cfg, fileStore(t, cp), nil)
	require.Eventually(t, func() bool { return counter(t, h.in.m.lostBytes) == float64(len(data)) }, 5*time.Second, 5*time.Millisecond)
	require.Regexp(t, `level=WARN msg=".*lost.*" .*path=`+regexpQuote(path)+` unread_bytes=`+fmt.Sprint(len(data)), logs.String())
}

// A rotated file compressed in a format the agent cannot read is said so.
func TestUnreadableCompressionIsReported(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.FilePattern = "app.log"
	path := filepath.Join(dir, "app.log")
	h, logs := startLogged(t, cfg, nil, nil)
	writeFile(t, path, "a\n")
	h.waitContents("a")
	writeFile(t, path+".1.xz", "\xfd7zXZ\x00 not really")
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "compressed in a format the agent cannot read")
	}, 5*time.Second, 5*time.Millisecond)
}

// A read waiting on back-pressure while the file is copied and truncated
// and rewritten beyond the reader's offset must not read new content at the
// old offset: the rest of the old content comes from the copy.
func TestCopyTruncateDuringBlockedReadReadsRestFromCopy(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.FilePattern = "app.log"
	path := filepath.Join(dir, "app.log")
	// The first batch's acknowledgement is held: the reader then waits in
	// the middle of the file.
	h, holder := startHolding(t, cfg, true)
	old, want := numbered("old", 0, 300) // 15 KiB: several reads
	writeFile(t, path, old)
	holder.waitHeld(t)
	time.Sleep(50 * time.Millisecond) // the reader waits for room in the window
	// copytruncate, and the application writes more than before.
	require.NoError(t, os.WriteFile(path+".1", []byte(old), 0o644))
	newer, lines := numbered("NEW", 0, 600)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	require.NoError(t, err)
	_, err = f.WriteString(newer)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	want = append(want, lines...)
	holder.release()
	waitAll(t, h, want)
}

// Where inotify cannot watch a directory (the watch limit, NFS), polling
// is the fallback: files created, grown and rotated there are still read.
func TestPollingAloneFindsAndFollowsFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.PollInterval = 500 * time.Millisecond // the default
	h := start(t, cfg, nil, nil, nil, func(in *Input) {
		in.watchFull = time.Now().Add(time.Hour) // as after ENOSPC: no directory is watched
	})
	path := filepath.Join(dir, "app.log")
	data, want := numbered("before rotation", 0, 50)
	writeFile(t, path, data)
	waitAll(t, h, want)
	require.Zero(t, counter(t, h.in.m.inotifyDirs), "a directory was watched")
	more, lines := numbered("after", 0, 50)
	appendFile(t, path, more)
	want = append(want, lines...)
	require.NoError(t, os.Rename(path, filepath.Join(dir, "app.log.1")))
	newer, lines := numbered("new file", 0, 50)
	writeFile(t, path, newer)
	want = append(want, lines...)
	waitAll(t, h, want)
}
