package file

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/pipeline/pipelinetest"
)

// upperDecoder joins lines ending in '\' with the next one and upper-cases
// them, with a field naming the line count: enough to see every hook of
// Decoder at work (held lines, End, Fields, Flush).
type upperDecoder struct {
	held  []byte
	lines int
}

func (d *upperDecoder) Push(line []byte, end int64, emit func(Event)) {
	d.held = append(d.held, bytes.ToUpper(bytes.TrimSuffix(line, []byte(`\`)))...)
	d.lines++
	if bytes.HasSuffix(line, []byte(`\`)) {
		return
	}
	d.Flush(func(ev Event) { ev.End = end; emit(ev) })
}

func (d *upperDecoder) Flush(emit func(Event)) {
	if d.lines == 0 {
		return
	}
	emit(Event{Content: d.held, Sec: 1700000000, Fields: []Field{{Key: "lines", Value: []byte{byte('0' + d.lines)}}}})
	d.held, d.lines = d.held[:0], 0
}

func (d *upperDecoder) Pending() bool { return d.lines > 0 }

// hookEvents are the recorded events as "content|time|fields...|tags"
// lines, every field and tag in the order the input added them.
func hookEvents(r *pipelinetest.Recorder) []string {
	var out []string
	for _, e := range r.Events() {
		parts := []string{}
		for _, f := range e.Fields {
			parts = append(parts, f.Key+"="+f.Value)
		}
		parts = append(parts, "t="+time.Unix(int64(e.Time), 0).UTC().Format("2006"))
		for _, t := range e.Tags {
			parts = append(parts, "tag:"+t.Key+"="+t.Value)
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func TestHooksDecoderDirsAcceptTags(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	require.NoError(t, os.MkdirAll(a, 0o755))
	require.NoError(t, os.MkdirAll(b, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(a, "x.log"), []byte("one\\\ntwo\nthree\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(b, "x.log"), []byte("hidden\n"), 0o644))

	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	var mu sync.Mutex
	acceptB := false
	s := &pipelinetest.Recorder{}
	cfg := Config{Name: "hooks", LogPath: "/nonexistent/in/container", FilePattern: "*.log",
		PollInterval: 20 * time.Millisecond, TailExisted: true, TailSizeKB: 1024, FlushTimeout: 200 * time.Millisecond}
	in, err := New(cfg, s, Settings{
		Checkpoints: store,
		NewDecoder:  func(string) (Decoder, error) { return &upperDecoder{}, nil },
		Dirs:        func(dst []string) []string { return append(dst, a, b) },
		Accept: func(p string) bool {
			mu.Lock()
			defer mu.Unlock()
			return filepath.Dir(p) == a || acceptB
		},
		Tags:    func(p string, add func(k, v string)) { add("dir", filepath.Base(filepath.Dir(p))) },
		PathTag: func(p string) string { return "/in/container/" + filepath.Base(p) },
	})
	require.NoError(t, err)
	require.NoError(t, in.Start(context.Background()))
	defer func() { require.NoError(t, in.Shutdown(context.Background())) }()

	want := []string{
		"content=ONETWO lines=2 t=2023 tag:__path__=/in/container/x.log tag:dir=a",
		"content=THREE lines=1 t=2023 tag:__path__=/in/container/x.log tag:dir=a",
	}
	require.Eventually(t, func() bool { return len(hookEvents(s)) >= 2 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // b/x.log must stay unread while refused
	require.Equal(t, want, hookEvents(s))

	mu.Lock()
	acceptB = true
	mu.Unlock()
	require.Eventually(t, func() bool { return len(hookEvents(s)) == 3 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, "content=HIDDEN lines=1 t=2023 tag:__path__=/in/container/x.log tag:dir=b", hookEvents(s)[2])

	// A held line is flushed by the idle timeout, not lost.
	f, err := os.OpenFile(filepath.Join(a, "x.log"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("held\\\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Eventually(t, func() bool { return len(hookEvents(s)) == 4 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, "content=HELD lines=1 t=2023 tag:__path__=/in/container/x.log tag:dir=a", hookEvents(s)[3])
}
