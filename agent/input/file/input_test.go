package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/multiline"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/agent/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig polls fast so tests observe behaviour within well under a second.
func testConfig(dir string) Config {
	c := DefaultConfig()
	c.Name = "cfg"
	c.LogPath = dir
	c.FilePattern = "*.log"
	c.PollInterval = 20 * time.Millisecond
	c.FlushTimeout = 300 * time.Millisecond
	c.CloseRemovedAfter = 200 * time.Millisecond
	c.TailExisted = true
	return c
}

type harness struct {
	t     *testing.T
	in    *Input
	sink  *pipelinetest.Recorder
	store *checkpoint.Store
	reg   *prometheus.Registry
}

func start(t *testing.T, cfg Config, store *checkpoint.Store, s *pipelinetest.Recorder, newSplitter func() (Splitter, error), tune ...func(*Input)) *harness {
	t.Helper()
	if store == nil {
		var err error
		store, err = checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
		require.NoError(t, err)
	}
	if s == nil {
		s = &pipelinetest.Recorder{}
	}
	reg := prometheus.NewRegistry()
	in, err := New(cfg, s, Settings{Registerer: reg, Checkpoints: store, NewSplitter: newSplitter})
	require.NoError(t, err)
	for _, fn := range tune {
		fn(in)
	}
	require.NoError(t, in.Start(context.Background()))
	h := &harness{t: t, in: in, sink: s, store: store, reg: reg}
	t.Cleanup(func() {
		h.stop()
		for _, e := range s.Events() {
			require.Len(t, e.Fields, 1, "without a decoder the line is the one field: %v", e.Fields)
		}
	})
	return h
}

func (h *harness) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(h.t, h.in.Shutdown(ctx))
}

// waitLines waits until exactly want has been received (in any order
// across files, in order within the list) and fails on extra events.
func (h *harness) waitContents(want ...string) {
	h.t.Helper()
	require.Eventually(h.t, func() bool { return len(h.sink.Contents()) >= len(want) }, 5*time.Second, 5*time.Millisecond,
		"got %q, want %q", h.sink.Contents(), want)
	time.Sleep(100 * time.Millisecond) // nothing more may arrive
	require.Equal(h.t, want, h.sink.Contents())
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(data), 0o644))
}

func appendFile(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString(data)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func counter(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

func TestDiscoversNewFilesAndDirectoriesWithinMaxDepth(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxDepth = 1
	h := start(t, cfg, nil, nil, nil)

	writeFile(t, filepath.Join(dir, "a.log"), "a1\n")
	h.waitContents("a1")
	writeFile(t, filepath.Join(dir, "ignored.txt"), "not matched\n")
	writeFile(t, filepath.Join(dir, "sub", "b.log"), "b1\n")
	t0 := time.Now()
	h.waitContents("a1", "b1")
	// Picked up by inotify at once, by the 500 ms poll at worst; the bound
	// is loose because make test runs on loaded 2-core machines.
	require.Less(t, time.Since(t0), 5*time.Second, "a new directory must be picked up by the next poll")
	writeFile(t, filepath.Join(dir, "sub", "deeper", "c.log"), "too deep\n")
	appendFile(t, filepath.Join(dir, "a.log"), "a2\n")
	h.waitContents("a1", "b1", "a2")
	ev := h.sink.Events()
	require.Equal(t, filepath.Join(dir, "sub", "b.log"), ev[1].Path())
}

func TestLogPathWithGlobComponent(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(filepath.Join(dir, "*", "app"))
	h := start(t, cfg, nil, nil, nil)
	writeFile(t, filepath.Join(dir, "pod1", "app", "x.log"), "one\n")
	h.waitContents("one")
	writeFile(t, filepath.Join(dir, "pod2", "app", "x.log"), "two\n")
	writeFile(t, filepath.Join(dir, "pod3", "other", "x.log"), "not matched\n")
	h.waitContents("one", "two")
}

func TestBlacklists(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxDepth = 3
	cfg.DirBlacklist = []string{filepath.Join(dir, "skip")}
	cfg.FilenameBlacklist = []string{"*.tmp.log"}
	cfg.FilepathBlacklist = []string{filepath.Join(dir, "**", "secret.log")}
	writeFile(t, filepath.Join(dir, "skip", "x.log"), "dir blacklisted\n")
	writeFile(t, filepath.Join(dir, "skip", "deep", "x.log"), "below blacklisted dir\n")
	writeFile(t, filepath.Join(dir, "a.tmp.log"), "name blacklisted\n")
	writeFile(t, filepath.Join(dir, "k", "l", "secret.log"), "path blacklisted\n")
	writeFile(t, filepath.Join(dir, "k", "ok.log"), "kept\n")
	h := start(t, cfg, nil, nil, nil)
	h.waitContents("kept")
}

func TestRenameRotationReadsOldFileToEnd(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	h := start(t, cfg, nil, nil, nil)
	path := filepath.Join(dir, "app.log")
	w, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	defer w.Close()
	_, _ = w.WriteString("1\n2\n")
	h.waitContents("1", "2")

	require.NoError(t, os.Rename(path, path+".1")) // not matched by *.log
	_, _ = w.WriteString("3\n")                    // the app still writes to the old file
	writeFile(t, path, "new1\n")
	_, _ = w.WriteString("4\n")
	require.Eventually(t, func() bool { return len(h.sink.Contents()) == 5 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	got := h.sink.Events()
	var old, cur []string
	for _, e := range got {
		if e.Path() == path && e.Content() != "new1" {
			old = append(old, e.Content())
		} else {
			cur = append(cur, e.Content())
		}
	}
	require.Equal(t, []string{"1", "2", "3", "4"}, old)
	require.Equal(t, []string{"new1"}, cur)
	require.Equal(t, 1.0, counter(t, h.in.m.rotations.WithLabelValues(rotRename)))
	// The rotated file is closed once idle; only the new one stays open.
	require.Eventually(t, func() bool { return counter(t, h.in.m.openFiles) == 1 }, 5*time.Second, 10*time.Millisecond)
}

func TestCopyTruncateRereadsFromStart(t *testing.T) {
	dir := t.TempDir()
	h := start(t, testConfig(dir), nil, nil, nil)
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "first line that is long\nsecond line that is long\n")
	h.waitContents("first line that is long", "second line that is long")
	// copytruncate: the content is copied elsewhere, the file truncated and
	// the app keeps writing (shorter than before, so only size tells).
	require.NoError(t, os.Truncate(path, 0))
	require.Eventually(t, func() bool { return counter(t, h.in.m.rotations.WithLabelValues(rotTruncate)) == 1 }, 5*time.Second, 5*time.Millisecond)
	appendFile(t, path, "after\n")
	h.waitContents("first line that is long", "second line that is long", "after")
}

func TestRewrittenFileWithSameInodeIsReadFromStart(t *testing.T) {
	// Same device and inode, larger size, different first bytes: an inode
	// reused for a new file (or a file rewritten in place). Position-only
	// tracking would skip its first 12 bytes.
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.PollInterval = 200 * time.Millisecond
	h := start(t, cfg, nil, nil, nil)
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "old content\n")
	h.waitContents("old content")
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("NEW CONTENT\nand more lines\n"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	h.waitContents("old content", "NEW CONTENT", "and more lines")
	require.Equal(t, 1.0, counter(t, h.in.m.rotations.WithLabelValues(rotSignature)))
}

func openFDsTo(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, path) {
			n++
		}
	}
	return n
}

func TestDeleteWhileOpenReadsToEndThenFreesDescriptor(t *testing.T) {
	dir := t.TempDir()
	h := start(t, testConfig(dir), nil, nil, nil, func(in *Input) { in.gc.every = 100 * time.Millisecond })
	path := filepath.Join(dir, "app.log")
	w, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	_, _ = w.WriteString("a\n")
	h.waitContents("a")
	require.Equal(t, 1, openFDsTo(t, path)-1) // ours, besides the writer
	require.NoError(t, os.Remove(path))
	_, _ = w.WriteString("b\nc\n") // written after the delete
	require.NoError(t, w.Close())
	h.waitContents("a", "b", "c")
	require.Eventually(t, func() bool { return openFDsTo(t, path) == 0 }, 5*time.Second, 10*time.Millisecond,
		"the deleted file must be closed so its space is freed")
	require.Equal(t, 1.0, counter(t, h.in.m.rotations.WithLabelValues(rotDelete)))
	// Read to its end, its entry is a tombstone for a while (a compressed
	// copy made before the delete is known as read), then removed.
	require.Eventually(t, func() bool {
		es := h.store.Entries("cfg")
		return len(es) == 1 && es[0].Done && es[0].Offset == int64(len("a\nb\nc\n"))
	}, 5*time.Second, 5*time.Millisecond, "%v", h.store.Entries("cfg"))
	require.Eventually(t, func() bool { return len(h.store.Entries("cfg")) == 0 }, 5*time.Second, 10*time.Millisecond,
		"a deleted file's tombstone is dropped")
}

func TestRestartResumesWithoutLossOrDuplicates(t *testing.T) {
	dir := t.TempDir()
	cpPath := filepath.Join(t.TempDir(), "checkpoint.json")
	newStore := func() *checkpoint.Store {
		s, err := checkpoint.New(checkpoint.Config{Path: cpPath, Interval: time.Hour}, checkpoint.Settings{})
		require.NoError(t, err)
		return s
	}
	path := filepath.Join(dir, "app.log")
	var want []string
	var sb strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&sb, "line %d\n", i)
		want = append(want, fmt.Sprintf("line %d", i))
	}
	writeFile(t, path, sb.String())
	cfg := testConfig(dir)
	cfg.MaxBatchEvents = 64
	h1 := start(t, cfg, newStore(), nil, nil)
	h1.waitContents(want...)
	h1.stop()

	// While the agent is down: more lines, then a rename rotation with
	// lines in both the rotated and the new file.
	appendFile(t, path, "down 1\n")
	require.NoError(t, os.Rename(path, path+".1"))
	appendFile(t, path+".1", "down 2\n")
	writeFile(t, path, "fresh 1\n")

	h2 := start(t, cfg, newStore(), nil, nil)
	require.Eventually(t, func() bool { return len(h2.sink.Contents()) >= 3 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(150 * time.Millisecond)
	require.ElementsMatch(t, []string{"down 1", "down 2", "fresh 1"}, h2.sink.Contents())
	appendFile(t, path, "fresh 2\n")
	require.Eventually(t, func() bool { return len(h2.sink.Contents()) == 4 }, 5*time.Second, 5*time.Millisecond)
}

// A volume mounted again (a PVC after its pod moved to another node) gives
// its files a new device id: a file at the same path with the same inode
// and first bytes resumes at its checkpoint, with the guides' manifests as
// printed (no --ignore-device). At another path only IgnoreDevice resumes
// it; without it that is another file, read from its start.
func TestDeviceChangeResumes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		samePath    bool
		ignore      bool
		wantResumed bool
	}{
		{"same path", true, false, true},
		{"same path, ignoreDevice", true, true, true},
		{"other path, ignoreDevice", false, true, true},
		{"other path", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			writeFile(t, path, "already sent\nnot yet\n")
			st, err := os.Stat(path)
			require.NoError(t, err)
			id := fileIDOf(t, st)
			store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
			require.NoError(t, err)
			saved := path
			if !tc.samePath {
				saved = filepath.Join(dir, "elsewhere", "app.log")
			}
			// Saved on another node: same inode and content, another device.
			store.Put(checkpoint.Entry{Config: "cfg", Path: saved, File: checkpoint.FileID{Dev: id.Dev + 1, Inode: id.Inode},
				Sig: checkpoint.Sign([]byte("already sent\nnot yet\n")), Offset: int64(len("already sent\n")), Size: st.Size()})
			cfg := testConfig(dir)
			cfg.IgnoreDevice = tc.ignore
			h := start(t, cfg, store, nil, nil)
			if tc.wantResumed {
				h.waitContents("not yet")
				es := store.Entries("cfg")
				require.Len(t, es, 1, "the old device's entry is replaced")
				require.Equal(t, id, es[0].File)
			} else {
				h.waitContents("already sent", "not yet")
			}
		})
	}
}

func TestHugeLineIsSplitAndCounted(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxReadBufferSize = 1024
	h := start(t, cfg, nil, nil, nil)
	long := strings.Repeat("x", 2500)
	writeFile(t, filepath.Join(dir, "a.log"), "short\n"+long+"\nend\n")
	h.waitContents("short", long[:1024], long[1024:2048], long[2048:], "end")
	require.Equal(t, 2.0, counter(t, h.in.m.linesSplit))
}

func TestHugeLineSplitKeepsUTF8Characters(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxReadBufferSize = 1024
	h := start(t, cfg, nil, nil, nil)
	long := strings.Repeat("a", 1023) + "é" + "tail" // é straddles the 1024 boundary
	writeFile(t, filepath.Join(dir, "a.log"), long+"\n")
	h.waitContents(long[:1023], "étail")
}

func TestGBKIsDecoded(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Encoding = "gbk"
	h := start(t, cfg, nil, nil, nil)
	// "你好 world" in GBK.
	writeFile(t, filepath.Join(dir, "a.log"), "\xc4\xe3\xba\xc3 world\r\nplain\n")
	h.waitContents("你好 world", "plain")
}

func TestGBKHugeLineSplitKeepsCharacters(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Encoding = "gbk"
	cfg.MaxReadBufferSize = 1024
	h := start(t, cfg, nil, nil, nil)
	// 1023 ASCII bytes, then 你 (2 bytes) straddling the limit.
	writeFile(t, filepath.Join(dir, "a.log"), strings.Repeat("a", 1023)+"\xc4\xe3z\n")
	h.waitContents(strings.Repeat("a", 1023), "你z")
}

func TestDiscardNonUTF8ReplacesInvalidBytes(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.DiscardNonUTF8 = true
	h := start(t, cfg, nil, nil, nil)
	writeFile(t, filepath.Join(dir, "a.log"), "ok é\nbad \xff\xfe end\n")
	h.waitContents("ok é", "bad    end")
	require.Equal(t, 1.0, counter(t, h.in.m.nonUTF8))
}

func TestIdleFlushOfUnterminatedLastLine(t *testing.T) {
	dir := t.TempDir()
	h := start(t, testConfig(dir), nil, nil, nil)
	path := filepath.Join(dir, "a.log")
	writeFile(t, path, "done\npartial")
	// No wait for "done" alone: on a loaded machine the flush timeout
	// (300 ms) can pass before a check that only "done" came.
	require.Eventually(t, func() bool { return len(h.sink.Contents()) >= 2 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"done", "partial"}, h.sink.Contents())
	appendFile(t, path, "\nnext\n")
	// "partial" was already sent; the newline that ends it makes no empty event.
	h.waitContents("done", "partial", "next")
}

func TestMultilineEventsAndIdleFlush(t *testing.T) {
	dir := t.TempDir()
	split := func() (Splitter, error) { return multiline.New(multiline.Config{BeginRegex: `\d+ .*`}) }
	h := start(t, testConfig(dir), nil, nil, split)
	writeFile(t, filepath.Join(dir, "a.log"), "1 start\n  at x\n  at y\n2 next\n  at z\n")
	h.waitContents("1 start\n  at x\n  at y", "2 next\n  at z")
}

func TestFirstSightOfLargeFileStartsAtTailLine(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.TailSizeKB = 1
	path := filepath.Join(dir, "a.log")
	var sb strings.Builder
	for i := range 200 {
		fmt.Fprintf(&sb, "line %03d\n", i) // 9 bytes per line
	}
	writeFile(t, path, sb.String())
	h := start(t, cfg, nil, nil, nil)
	// The last 1024 bytes start inside line 86 (200*9-1024 = 776 = 86*9+2).
	var want []string
	for i := 87; i < 200; i++ {
		want = append(want, fmt.Sprintf("line %03d", i))
	}
	h.waitContents(want...)
	require.Equal(t, float64(87*9), counter(t, h.in.m.skippedBytes.WithLabelValues("tail")))
}

func TestExistingOldFilesStartAtEndWithoutTailExisted(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.TailExisted = false
	path := filepath.Join(dir, "old.log")
	writeFile(t, path, "history\n")
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(path, old, old))
	writeFile(t, filepath.Join(dir, "recent.log"), "recent\n")
	h := start(t, cfg, nil, nil, nil)
	h.waitContents("recent")
	appendFile(t, path, "new\n")
	h.waitContents("recent", "new")
}

func TestTopicRegexGivesTopicAndTags(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(filepath.Join(dir, "app"))
	cfg.MaxDepth = 1
	cfg.TopicFormat = regexpQuote(dir) + `/app/(?P<namespace>[^_]+)_(?P<pod>[^/]+)/access\.log`
	cfg.FilePattern = "access.log"
	h := start(t, cfg, nil, nil, nil)
	writeFile(t, filepath.Join(dir, "app", "prod_web-1", "access.log"), "GET /\n")
	h.waitContents("GET /")
	e := h.sink.Events()[0]
	// Logtail: several groups join into the topic with "_"; named groups
	// are tags.
	require.Equal(t, "prod_web-1", e.Topic)
	require.Equal(t, map[string]string{"__path__": filepath.Join(dir, "app", "prod_web-1", "access.log"),
		"namespace": "prod", "pod": "web-1"}, e.TagMap())
	require.Empty(t, h.in.TopicWarning())
}

// Logtail's topic rules for path regexes: one group is the topic (a tag
// too when named); several are joined with "_" and each is a tag, unnamed
// ones as __topic_N__; a path that does not match has neither, and the
// input says so.
func TestTopicForPath(t *testing.T) {
	f := func(format, path, wantTopic string, wantTags ...[2]string) {
		t.Helper()
		tp, err := newTopic(format, "")
		require.NoError(t, err)
		topic, tags := tp.forPath(path)
		require.Equal(t, wantTopic, topic, format)
		require.Equal(t, wantTags, tags, format)
	}
	f(`/var/log/(\w+)/access\.log`, "/var/log/nginx/access.log", "nginx")
	f(`/var/log/(?P<app>\w+)/access\.log`, "/var/log/nginx/access.log", "nginx", [2]string{"app", "nginx"})
	f(`/var/log/(\w+)/(\w+)\.log`, "/var/log/nginx/access.log", "nginx_access",
		[2]string{"__topic_1__", "nginx"}, [2]string{"__topic_2__", "access"})
	f(`/var/log/(?P<app>\w+)/(\w+)\.log`, "/var/log/nginx/access.log", "nginx_access",
		[2]string{"app", "nginx"}, [2]string{"__topic_2__", "access"})
	// Guide 003's regex (with .*? as in its screenshot) on a subPathExpr path.
	f(`\/var\/log\/(?P<app>.*?)\/(?P<namespace>[^_]+?)_(?P<podname>[^_]+?)_(?P<podip>[\d\.]+?)_(?P<nodeip>[\d\.]+?)_(?P<nodename>[^_]+?)\/access.log`,
		"/var/log/nginx/default_mock-nginx-test-7d9f_10.1.0.7_192.168.0.3_node-1/access.log",
		"nginx_default_mock-nginx-test-7d9f_10.1.0.7_192.168.0.3_node-1",
		[2]string{"app", "nginx"}, [2]string{"namespace", "default"}, [2]string{"podname", "mock-nginx-test-7d9f"},
		[2]string{"podip", "10.1.0.7"}, [2]string{"nodeip", "192.168.0.3"}, [2]string{"nodename", "node-1"})
	// The same regex as the guide prints it (".\*?", a Markdown escape):
	// "." then an optional literal "*" never matches a directory name.
	f(`\/var\/log\/(?P<app>.\*?)\/(?P<namespace>[^_]+?)_(?P<podname>[^_]+?)_(?P<podip>[\d\.]+?)_(?P<nodeip>[\d\.]+?)_(?P<nodename>[^_]+?)\/access.log`,
		"/var/log/nginx/default_mock-nginx-test-7d9f_10.1.0.7_192.168.0.3_node-1/access.log", "")
	f(`customized://orders`, "/x", "orders")
	f(`none`, "/x", "")
}

func TestTopicWarningForARegexThatNeverMatches(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(filepath.Join(dir, "app"))
	cfg.MaxDepth = 1
	cfg.FilePattern = "access.log"
	cfg.TopicFormat = `/var/log/(?P<app>.\*?)/access\.log`
	h := start(t, cfg, nil, nil, nil)
	writeFile(t, filepath.Join(dir, "app", "a", "access.log"), "one\n")
	h.waitContents("one")
	e := h.sink.Events()[0]
	require.Empty(t, e.Topic)
	require.Contains(t, h.in.TopicWarning(), "topicFormat matches none of the 1 files collected (e.g. "+filepath.Join(dir, "app", "a", "access.log")+")")
}

func TestBackPressurePausesReading(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxBatchEvents = 10
	cfg.MaxInflightBatches = 2
	cfg.MaxReadBufferSize = 4096
	cfg.Readers = 1
	s := &pipelinetest.Recorder{Gate: make(chan struct{})}
	h := start(t, cfg, nil, s, nil)
	var want []string
	var sb strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&sb, "line %05d\n", i)
		want = append(want, fmt.Sprintf("line %05d", i))
	}
	writeFile(t, filepath.Join(dir, "a.log"), sb.String())
	s.Gate <- struct{}{} // let one batch through: reading has started
	time.Sleep(200 * time.Millisecond)
	read := counter(t, h.in.m.bytesRead)
	require.Less(t, read, float64(2*cfg.MaxReadBufferSize), "reading must pause while the consumer blocks")
	lag := testutil.ToFloat64(h.in.m.lag.WithLabelValues(filepath.Join(dir, "a.log")))
	require.Greater(t, lag, float64(sb.Len()-2*cfg.MaxReadBufferSize), "the unread bytes show as lag")
	close(s.Gate) // unblock: everything arrives, once, in order
	h.waitContents(want...)
}

func TestFailedBatchIsReadAgain(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxBatchEvents = 1
	s := &pipelinetest.Recorder{AckErr: func(n int) error {
		if n == 2 {
			return fmt.Errorf("backend rejected")
		}
		return nil
	}}
	h := start(t, cfg, nil, s, nil)
	writeFile(t, filepath.Join(dir, "a.log"), "a\nb\nc\n")
	// "b" failed: the file is read again from its last acked offset, so "b"
	// arrives (and "c" may arrive twice); nothing is lost.
	require.Eventually(t, func() bool {
		got := h.sink.Contents()
		return len(got) >= 3 && got[len(got)-1] == "c" && contains(got, "b")
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, "a", h.sink.Contents()[0])
	require.Equal(t, 1.0, counter(t, h.in.m.batchFailures))
	require.Eventually(t, func() bool {
		es := h.store.Entries("cfg")
		return len(es) == 1 && es[0].Offset == 6
	}, 5*time.Second, 10*time.Millisecond)
}

func TestAckedOutOfOrderAdvancesOnlyOverPrefix(t *testing.T) {
	saved := []int64{}
	in := &Input{m: mustMetrics(t), ackWake: make(chan struct{}, 1)}
	in.log = discardLogger()
	f := &tracked{input: in}
	f.win.put = func(e checkpoint.Entry) { saved = append(saved, e.Offset) }
	f.win.prepare()
	a1, ok, _ := f.win.reserve(f, 10, 4)
	require.True(t, ok)
	a2, _, _ := f.win.reserve(f, 20, 4)
	a3, _, _ := f.win.reserve(f, 30, 4)
	a3.Done(nil)
	a2.Done(nil)
	require.Empty(t, saved, "nothing is saved while the first batch is unacked")
	a1.Done(nil)
	require.Equal(t, []int64{30}, saved)
}

func TestConfigValidateNamesKeys(t *testing.T) {
	c := DefaultConfig()
	c.LogPath = "relative"
	c.FilePattern = "["
	c.TopicFormat = "(unclosed"
	c.Encoding = "latin1"
	c.FilenameBlacklist = []string{"[x"}
	err := c.Validate()
	require.Error(t, err)
	for _, want := range []string{"configName", "logPath", "filePattern", "topicFormat", "fileEncoding", "filename_blacklist"} {
		require.Contains(t, err.Error(), want)
	}
	c = DefaultConfig()
	c.Name, c.LogPath = "x", "/var/log"
	require.NoError(t, c.Validate())
}

func TestShutdownWithoutStartAndTwice(t *testing.T) {
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	in, err := New(testConfig(t.TempDir()), &pipelinetest.Recorder{}, Settings{Checkpoints: store})
	require.NoError(t, err)
	require.NoError(t, in.Shutdown(context.Background()))
	require.NoError(t, in.Shutdown(context.Background()))
}

func TestMoreFilesThanOpenDescriptors(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxOpenFiles = 3
	cfg.Readers = 1
	cfg.CloseInactive = 50 * time.Millisecond
	h := start(t, cfg, nil, nil, nil)
	var want []string
	for i := range 8 {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("f%d.log", i)), fmt.Sprintf("file %d\n", i))
		want = append(want, fmt.Sprintf("file %d", i))
	}
	require.Eventually(t, func() bool { return len(h.sink.Contents()) == 8 }, 10*time.Second, 10*time.Millisecond)
	require.ElementsMatch(t, want, h.sink.Contents())
	require.LessOrEqual(t, counter(t, h.in.m.openFiles), 3.0)
	// Files closed while idle are reopened by identity when they grow.
	appendFile(t, filepath.Join(dir, "f0.log"), "again\n")
	require.Eventually(t, func() bool { return contains(h.sink.Contents(), "again") }, 10*time.Second, 10*time.Millisecond)
}

func TestRewrittenToSameSizeIsReadAgain(t *testing.T) {
	dir := t.TempDir()
	h := start(t, testConfig(dir), nil, nil, nil)
	path := filepath.Join(dir, "a.log")
	writeFile(t, path, "aaaa\n")
	h.waitContents("aaaa")
	time.Sleep(20 * time.Millisecond) // a new mtime even on coarse clocks
	writeFile(t, path, "bbbb\n")
	h.waitContents("aaaa", "bbbb")
}

func TestShutdownWaitsForAcksAndSavesCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cpPath := filepath.Join(t.TempDir(), "cp.json")
	store, err := checkpoint.New(checkpoint.Config{Path: cpPath, Interval: time.Hour}, checkpoint.Settings{})
	require.NoError(t, err)
	data := "one\ntwo\n"
	writeFile(t, filepath.Join(dir, "a.log"), data)
	var wg sync.WaitGroup
	received := make(chan struct{}, 16)
	next := pipeline.ConsumerFunc(func(_ context.Context, b *pipeline.Batch) error {
		ack := b.Ack
		wg.Add(1)
		go func() { // an output that acks later, after its disk write
			defer wg.Done()
			time.Sleep(300 * time.Millisecond)
			ack.Done(nil)
		}()
		received <- struct{}{}
		return nil
	})
	in, err := New(testConfig(dir), next, Settings{Checkpoints: store})
	require.NoError(t, err)
	require.NoError(t, in.Start(context.Background()))
	<-received
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, in.Shutdown(ctx))
	wg.Wait()
	reloaded, err := checkpoint.New(checkpoint.Config{Path: cpPath, Interval: time.Hour}, checkpoint.Settings{})
	require.NoError(t, err)
	es := reloaded.Entries("cfg")
	require.Len(t, es, 1)
	require.Equal(t, int64(len(data)), es[0].Offset, "the ack that came during Shutdown is saved")
}

func TestShutdownDeadlineWithUnackedBatch(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.log"), "one\n")
	var held pipeline.Ack
	var mu sync.Mutex
	next := pipeline.ConsumerFunc(func(_ context.Context, b *pipeline.Batch) error {
		mu.Lock()
		held = b.Ack // never acked before the deadline
		mu.Unlock()
		return nil
	})
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	in, err := New(testConfig(dir), next, Settings{Checkpoints: store})
	require.NoError(t, err)
	require.NoError(t, in.Start(context.Background()))
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return held != nil }, 5*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = in.Shutdown(ctx)
	require.ErrorContains(t, err, "1 batches unacknowledged")
	held.Done(nil) // a late ack is harmless and saves nothing
	es := store.Entries("cfg")
	require.Len(t, es, 1)
	require.Equal(t, int64(0), es[0].Offset, "nothing acked, nothing advanced: the line is read again after restart")
}

func TestFastRotationLosesNothing(t *testing.T) {
	// Rotations faster than the poll interval: files are created, written
	// and renamed away between two passes. Every line must arrive once.
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.FilePattern = "app.log"
	cfg.PollInterval = 50 * time.Millisecond
	h := start(t, cfg, nil, nil, nil)
	path := filepath.Join(dir, "app.log")
	const rotations, perFile = 40, 300
	want := map[string]bool{"before": true}
	writeFile(t, path, "before\n")
	h.waitContents("before") // the input is running before rotation starts
	for r := range rotations {
		w, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		require.NoError(t, err)
		var sb strings.Builder
		for i := range perFile {
			line := fmt.Sprintf("r%03d line %04d", r, i)
			want[line] = true
			sb.WriteString(line + "\n")
		}
		_, err = w.WriteString(sb.String())
		require.NoError(t, err)
		require.NoError(t, w.Close())
		require.NoError(t, os.Rename(path, fmt.Sprintf("%s.%d", path, r)))
		time.Sleep(time.Duration(r%5) * 7 * time.Millisecond)
	}
	writeFile(t, path, "last\n")
	want["last"] = true
	require.Eventually(t, func() bool { return len(h.sink.Contents()) >= len(want) }, 20*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	got := h.sink.Contents()
	seen := map[string]bool{}
	for _, l := range got {
		require.False(t, seen[l], "duplicate %q", l)
		seen[l] = true
	}
	require.Equal(t, len(want), len(seen))
}

func TestNewFileAfterRotationIsReadFromStartWhateverItsSize(t *testing.T) {
	// A fast writer fills the new file past tail_size_kb before the next
	// pass; the tail rule must not skip its start.
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.TailSizeKB = 1
	cfg.PollInterval = 100 * time.Millisecond
	h := start(t, cfg, nil, nil, nil)
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "old\n")
	h.waitContents("old")
	require.NoError(t, os.Rename(path, path+".1"))
	var sb strings.Builder
	want := []string{"old"}
	for i := range 500 {
		fmt.Fprintf(&sb, "new %04d\n", i)
		want = append(want, fmt.Sprintf("new %04d", i))
	}
	writeFile(t, path, sb.String()) // 4.5 KiB > tail_size_kb
	h.waitContents(want...)
}

func TestReusedInodeIsReadFromStart(t *testing.T) {
	// A file deleted while its descriptor was closed (idle) and a new file
	// that gets the same inode: same device and inode, another signature.
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.CloseInactive = 30 * time.Millisecond
	cfg.PollInterval = 200 * time.Millisecond
	h := start(t, cfg, nil, nil, nil)
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "first generation, long enough\n")
	h.waitContents("first generation, long enough")
	require.Eventually(t, func() bool { return counter(t, h.in.m.openFiles) == 0 }, 5*time.Second, 10*time.Millisecond)
	st1, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Remove(path))
	writeFile(t, path, "second generation, and it is longer\n")
	st2, err := os.Stat(path)
	require.NoError(t, err)
	if fileIDOf(t, st1) != fileIDOf(t, st2) {
		t.Skip("the file system did not reuse the inode; TestRewrittenFileWithSameInodeIsReadFromStart covers the logic")
	}
	h.waitContents("first generation, long enough", "second generation, and it is longer")
}

func TestLogPathCreatedAfterStart(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "later", "logs")
	h := start(t, testConfig(dir), nil, nil, nil)
	time.Sleep(60 * time.Millisecond)
	writeFile(t, filepath.Join(dir, "a.log"), "hello\n")
	h.waitContents("hello")
}

func TestSymlinkLoopIsWalkedOnce(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Symlink(dir, filepath.Join(dir, "loop")))
	writeFile(t, filepath.Join(dir, "a.log"), "once\n")
	cfg := testConfig(dir)
	cfg.MaxDepth = 100
	h := start(t, cfg, nil, nil, nil)
	h.waitContents("once")
}

// After a restart the splitter starts at the checkpoint. An event cut by
// the size limit before any whole line is emitted must not move the
// checkpoint back to 0 (the next restart would send the whole file again).
func TestCutEventAfterRestartKeepsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cpPath := filepath.Join(t.TempDir(), "checkpoint.json")
	newStore := func() *checkpoint.Store {
		s, err := checkpoint.New(checkpoint.Config{Path: cpPath, Interval: time.Hour}, checkpoint.Settings{})
		require.NoError(t, err)
		return s
	}
	newSplitter := func() (Splitter, error) {
		return multiline.New(multiline.Config{BeginRegex: `line .*`, MaxEventBytes: 32})
	}
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "line 1\nline 2\n")
	resume := int64(len("line 1\nline 2\n"))
	s1 := newStore()
	h1 := start(t, testConfig(dir), s1, nil, newSplitter)
	h1.waitContents("line 1", "line 2") // the last by the flush timeout
	require.Eventually(t, func() bool {
		e := s1.Entries("cfg")
		return len(e) == 1 && e[0].Offset == resume
	}, 5*time.Second, 5*time.Millisecond)
	h1.stop()

	cfg := testConfig(dir)
	cfg.FlushTimeout = time.Hour // the long event stays open: only its cut pieces are sent

	appendFile(t, path, "line 3 "+strings.Repeat("x", 60)+"\n")
	s2 := newStore()
	h2 := start(t, cfg, s2, nil, newSplitter)
	require.Eventually(t, func() bool { return len(h2.sink.Contents()) >= 2 }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, "line 3 "+strings.Repeat("x", 25), h2.sink.Contents()[0], "nothing before the checkpoint is sent again")
	time.Sleep(100 * time.Millisecond) // the pieces' acks
	e := s2.Entries("cfg")
	require.Len(t, e, 1)
	require.GreaterOrEqual(t, e[0].Offset, resume, "the checkpoint must not move back before where reading resumed")
}

// A file matched under two paths (a symlink beside it, or a hard link) is
// one file: collected once, under the path seen first, and not taken for a
// rename back and forth on every pass.
func TestFileUnderTwoPathsIsCollectedOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	writeFile(t, path, "one\n")
	require.NoError(t, os.Symlink(path, filepath.Join(dir, "b.log")))
	h := start(t, testConfig(dir), nil, nil, nil)
	h.waitContents("one")
	e := h.store.Entries("cfg")
	require.Len(t, e, 1)
	first := e[0].Path
	appendFile(t, path, "two\n")
	h.waitContents("one", "two")
	// More names in the directory change the order a pass lists them in.
	for i := range 5 {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("z%d.txt", i)), "")
	}
	time.Sleep(10 * testConfig(dir).PollInterval) // several passes
	appendFile(t, path, "three\n")
	h.waitContents("one", "two", "three")
	require.Equal(t, 0.0, counter(t, h.in.m.rotations.WithLabelValues(rotRename)), "an alias is not a rename")
	e = h.store.Entries("cfg")
	require.Len(t, e, 1)
	require.Equal(t, first, e[0].Path, "kept under the path it was found at")
}
