package containerstdout

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

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/input/file"
	"github.com/sluicelog/sluice/agent/kube"
	"github.com/sluicelog/sluice/agent/pipeline/pipelinetest"
	"github.com/sluicelog/sluice/mocklog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// meta is an event's container metadata: the fields other than the line
// and the runtime's time and stream.
func meta(e pipelinetest.Event) map[string]string {
	m := e.FieldMap()
	delete(m, "content")
	delete(m, KeyTime)
	delete(m, KeySource)
	return m
}

func podDir(root, ns, pod, uid, ctr string) string {
	d := filepath.Join(root, ns+"_"+pod+"_"+uid, ctr)
	return d
}

func appendFile(t *testing.T, path string, data string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString(data)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func startInput(t *testing.T, cfg Config, md Metadata) (*pipelinetest.Recorder, *Input) {
	t.Helper()
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	s := &pipelinetest.Recorder{}
	if cfg.Name == "" {
		cfg.Name = "stdout"
	}
	cfg.File = file.Config{PollInterval: 20 * time.Millisecond, CloseRemovedAfter: 200 * time.Millisecond}
	if cfg.BeginLineTimeout == 0 {
		cfg.BeginLineTimeout = 300 * time.Millisecond
	}
	var set Settings
	set.Checkpoints = store
	if os.Getenv("DEBUGLOG") != "" {
		set.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if md != nil {
		set.Metadata = md
	}
	in, err := New(cfg, s, set)
	require.NoError(t, err)
	require.NoError(t, in.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, in.Shutdown(context.Background())) })
	return s, in
}

func TestStdoutCRIAndDockerJSONOverPodsTree(t *testing.T) {
	root := t.TempDir()
	cri := filepath.Join(podDir(root, "prod", "web-1", "uid-1", "nginx"), "0.log")
	docker := filepath.Join(podDir(root, "prod", "api-1", "uid-2", "api"), "0.log")
	long := strings.Repeat("x", 40_000)
	appendFile(t, cri, ""+
		"2024-01-01T00:00:00.000000001Z stdout F hello\n"+
		"2024-01-01T00:00:01Z stderr P "+long[:16384]+"\n"+
		"2024-01-01T00:00:02Z stderr P "+long[16384:32768]+"\n"+
		"2024-01-01T00:00:03Z stderr F "+long[32768:]+"\n")
	appendFile(t, docker, `{"log":"from docker \"quoted\"\n","stream":"stdout","time":"2024-01-01T00:00:04Z"}`+"\n"+
		`{"log":"partial ","stream":"stdout","time":"2024-01-01T00:00:05Z"}`+"\n"+
		`{"log":"joined\n","stream":"stdout","time":"2024-01-01T00:00:06Z"}`+"\n")
	appendFile(t, filepath.Join(root, "stray.log"), "not in a container directory\n")

	s, _ := startInput(t, Config{Root: root, Stdout: true, Stderr: true}, nil)
	require.Eventually(t, func() bool { return len(s.Events()) == 4 }, 10*time.Second, 20*time.Millisecond)
	byContent := map[string]pipelinetest.Event{}
	for _, r := range s.Events() {
		byContent[r.Content()] = r
	}
	hello := byContent["hello"]
	require.Equal(t, "stdout", hello.Field(KeySource))
	require.Equal(t, "2024-01-01T00:00:00.000000001Z", hello.Field(KeyTime))
	require.Equal(t, uint32(1704067200), hello.Time, "event time is the runtime's timestamp")
	require.Equal(t, map[string]string{"__path__": cri}, hello.TagMap())
	require.Equal(t, map[string]string{kube.TagNamespace: "prod", kube.TagPodName: "web-1",
		kube.TagPodUID: "uid-1", kube.TagContainerName: "nginx"}, meta(hello), "container metadata are log fields, as Logtail sends them")
	big, ok := byContent[long]
	require.True(t, ok, "the 40,000-byte line split by the runtime into P,P,F records is one event")
	require.Equal(t, "stderr", big.Field(KeySource))
	require.Equal(t, "2024-01-01T00:00:01Z", big.Field(KeyTime), "a joined line has its first record's time")
	require.Contains(t, byContent, `from docker "quoted"`)
	require.Equal(t, "2024-01-01T00:00:05Z", byContent["partial joined"].Field(KeyTime))
	require.Equal(t, "api", meta(byContent["partial joined"])[kube.TagContainerName])
}

func TestStdoutStreamSelectionAndMultiline(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(podDir(root, "ns", "p", "u", "c"), "0.log")
	appendFile(t, p, ""+
		"2024-01-01T00:00:00Z stdout F 2024-01-01 ERROR boom\n"+
		"2024-01-01T00:00:00Z stderr F ignored stderr\n"+
		"2024-01-01T00:00:00Z stdout F \tat a.go:1\n"+
		"2024-01-01T00:00:01Z stdout F 2024-01-01 INFO next\n")
	s, _ := startInput(t, Config{Root: p[:len(root)], Stdout: true, Stderr: false,
		BeginLineRegex: `\d{4}-\d\d-\d\d .*`, BeginLineTimeout: 200 * time.Millisecond}, nil)
	require.Eventually(t, func() bool { return len(s.Events()) == 2 }, 10*time.Second, 20*time.Millisecond,
		"the last event is flushed after BeginLineTimeout")
	require.Equal(t, []string{"2024-01-01 ERROR boom\n\tat a.go:1", "2024-01-01 INFO next"}, s.Contents())
}

// kubeletRotate does what the kubelet does: rename 0.log to
// 0.log.<timestamp> and start a new 0.log. Rotation can be faster than the
// agent's poll interval here.
func kubeletRotate(t *testing.T, dir string, n int) string {
	t.Helper()
	cur := filepath.Join(dir, "0.log")
	rotated := filepath.Join(dir, fmt.Sprintf("0.log.20240101-%06d", n))
	require.NoError(t, os.Rename(cur, rotated))
	require.NoError(t, os.WriteFile(cur, nil, 0o644))
	return rotated
}

// gzipRotated compresses a rotated file and removes it, as the kubelet
// does with all but the newest rotated file at its next rotation (10 s
// apart at the soonest; here as soon as it is 100 ms old).
func gzipRotated(t *testing.T, path string) {
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

func TestStdoutKubeletRotationLosesNothing(t *testing.T) {
	for _, format := range []string{mocklog.ContainerCRI, mocklog.ContainerDockerJSON} {
		t.Run(format, func(t *testing.T) {
			root := t.TempDir()
			dir := podDir(root, "ns", "gen", "u1", "app")
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "0.log"), []byte("2024-01-01T00:00:00Z stdout F started\n"), 0o644))
			s, _ := startInput(t, Config{Root: root, Stdout: true, Stderr: true}, nil)
			// Files present when the agent starts are read from their last
			// StartLogMaxOffset bytes; what is written after is all read.
			require.Eventually(t, func() bool { return len(s.Events()) == 1 }, 10*time.Second, 10*time.Millisecond)

			const rounds, perRound = 12, 500
			type rotatedFile struct {
				path string
				at   time.Time
			}
			var rotated []rotatedFile
			for r := range rounds {
				f, err := os.OpenFile(filepath.Join(dir, "0.log"), os.O_APPEND|os.O_WRONLY, 0)
				require.NoError(t, err)
				// 100-byte partial records: most lines span several.
				g, err := mocklog.New(mocklog.Options{LogType: "json", Writer: f, TotalCount: perRound,
					FirstSeq: uint64(r*perRound + 1), Container: format, PartialBytes: 100, Seed: 1})
				require.NoError(t, err)
				require.NoError(t, g.Run(context.Background()))
				require.NoError(t, f.Close())
				if r%3 == 1 {
					time.Sleep(30 * time.Millisecond) // sometimes a pass sees it, sometimes not
				}
				rotated = append(rotated, rotatedFile{kubeletRotate(t, dir, r), time.Now()})
				for len(rotated) > 1 && time.Since(rotated[0].at) > 100*time.Millisecond {
					gzipRotated(t, rotated[0].path)
					rotated = rotated[1:]
				}
			}
			var tr mocklog.SeqTracker
			deadline := time.Now().Add(30 * time.Second)
			for {
				tr = mocklog.SeqTracker{}
				for _, c := range s.Contents() {
					tr.AddLine([]byte(c))
				}
				if tr.CountIn(1, rounds*perRound) == rounds*perRound || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			require.Equal(t, uint64(rounds*perRound), tr.CountIn(1, rounds*perRound), tr.Summary(1, rounds*perRound))
			require.Zero(t, tr.Duplicates())
		})
	}
}

func TestStdoutTerminatedContainerReadToEnd(t *testing.T) {
	root := t.TempDir()
	podRoot := filepath.Join(root, "ns_done_u9")
	p := filepath.Join(podRoot, "job", "0.log")
	appendFile(t, p, "2024-01-01T00:00:00Z stdout F first\n")
	s, _ := startInput(t, Config{Root: root, Stdout: true, Stderr: true}, nil)
	require.Eventually(t, func() bool { return len(s.Events()) == 1 }, 10*time.Second, 10*time.Millisecond)

	// The container writes its last lines and exits; the pod is deleted
	// and the kubelet removes its log directory at once.
	var last strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&last, "2024-01-01T00:00:01Z stdout F last %d\n", i)
	}
	appendFile(t, p, last.String())
	require.NoError(t, os.RemoveAll(podRoot))
	require.Eventually(t, func() bool { return len(s.Events()) == 2001 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, "last 1999", s.Contents()[2000])
}

func TestFlatLayoutServerlessStdoutVolume(t *testing.T) {
	root := t.TempDir() // e.g. /stdlog
	appendFile(t, filepath.Join(root, "app", "0.log"), "2024-01-01T00:00:00Z stdout P a\n2024-01-01T00:00:00Z stdout F b\n")
	s, _ := startInput(t, Config{Root: root, Layout: LayoutFlat, Stdout: true, Stderr: true}, nil)
	require.Eventually(t, func() bool { return len(s.Events()) == 1 }, 10*time.Second, 10*time.Millisecond)
	r := s.Events()[0]
	require.Equal(t, "ab", r.Content())
	require.Equal(t, "app", meta(r)[kube.TagContainerName])
}

// memMetadata is an in-memory Metadata for selection tests; the real
// watcher is tested against kube-apiserver in agent/kube.
type memMetadata struct {
	mu     sync.Mutex
	byUID  map[string][]kube.Container
	gen    uint64
	synced bool
}

func (m *memMetadata) Container(uid, name string) (kube.Container, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.byUID[uid] {
		if c.Name == name {
			return c, true
		}
	}
	return kube.Container{}, false
}
func (m *memMetadata) HasSynced() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.synced }
func (m *memMetadata) Generation() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen
}
func (m *memMetadata) put(c kube.Container) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c.Known = true
	m.byUID[c.PodUID] = append(m.byUID[c.PodUID], c)
	m.gen++
}

func TestStdoutSelectionAndLateMetadata(t *testing.T) {
	root := t.TempDir()
	line := "2024-01-01T00:00:00Z stdout F hi from %s\n"
	for _, pod := range []string{"on", "off", "late"} {
		appendFile(t, filepath.Join(podDir(root, "ns", pod, "uid-"+pod, "app"), "0.log"), fmt.Sprintf(line, pod))
	}
	md := &memMetadata{byUID: map[string][]kube.Container{}, synced: true}
	md.put(kube.Container{Namespace: "ns", PodName: "on", PodUID: "uid-on", Name: "app", Image: "img:1", PodIP: "10.0.0.1",
		Env: map[string]string{"LOG": "yes"}, PodLabels: map[string]string{"app": "on"}})
	md.put(kube.Container{Namespace: "ns", PodName: "off", PodUID: "uid-off", Name: "app", Env: map[string]string{"LOG": "no"}})

	s, _ := startInput(t, Config{Root: root, Stdout: true, Stderr: true, MetadataWait: time.Minute,
		Selector:            kube.SelectorConfig{IncludeEnv: map[string]string{"LOG": "yes"}},
		ExternalK8sLabelTag: map[string]string{"app": "k8s_app"}}, md)
	require.Eventually(t, func() bool { return len(s.Events()) == 1 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, []string{"hi from on"}, s.Contents(), "off is excluded; late waits for its metadata")
	require.Equal(t, map[string]string{"__path__": filepath.Join(podDir(root, "ns", "on", "uid-on", "app"), "0.log")}, s.Events()[0].TagMap())
	require.Equal(t, map[string]string{
		kube.TagNamespace: "ns", kube.TagPodName: "on", kube.TagPodUID: "uid-on", kube.TagContainerName: "app",
		kube.TagImageName: "img:1", kube.TagContainerIP: "10.0.0.1", "k8s_app": "on"}, meta(s.Events()[0]))

	md.put(kube.Container{Namespace: "ns", PodName: "late", PodUID: "uid-late", Name: "app", Image: "img:late",
		Env: map[string]string{"LOG": "yes"}})
	require.Eventually(t, func() bool { return len(s.Events()) == 2 }, 10*time.Second, 10*time.Millisecond)
	r := s.Events()[1]
	require.Equal(t, "hi from late", r.Content(), "nothing written before the metadata arrived is lost")
	require.Equal(t, "img:late", meta(r)[kube.TagImageName])
}

func TestStdoutUnknownPodCollectedThenEnriched(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(podDir(root, "ns", "new", "uid-new", "app"), "0.log")
	appendFile(t, p, "2024-01-01T00:00:00Z stdout F before metadata\n")
	md := &memMetadata{byUID: map[string][]kube.Container{}}
	s, _ := startInput(t, Config{Root: root, Stdout: true, Stderr: true}, md)
	require.Eventually(t, func() bool { return len(s.Events()) == 1 }, 10*time.Second, 10*time.Millisecond)
	first := s.Events()[0]
	require.Equal(t, "new", meta(first)[kube.TagPodName], "tags from the log path")
	require.NotContains(t, meta(first), kube.TagImageName)

	md.put(kube.Container{Namespace: "ns", PodName: "new", PodUID: "uid-new", Name: "app", Image: "img:2"})
	appendFile(t, p, "2024-01-01T00:00:01Z stdout F after metadata\n")
	require.Eventually(t, func() bool { return len(s.Events()) == 2 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, "img:2", meta(s.Events()[1])[kube.TagImageName])
}

func TestParsePodLogPath(t *testing.T) {
	ns, pod, uid, c, ok := ParsePodLogPath("kube-system_coredns-5d78c9869d-abcde_0b2f3c4d-1111-2222-3333-444455556666/coredns/0.log")
	require.True(t, ok)
	require.Equal(t, []string{"kube-system", "coredns-5d78c9869d-abcde", "0b2f3c4d-1111-2222-3333-444455556666", "coredns"}, []string{ns, pod, uid, c})
	for _, bad := range []string{"x/0.log", "a_b/c/0.log", "a_b_c_d/c/0.log", "a__c/c/0.log", "a_b_c/c/d/0.log"} {
		_, _, _, _, ok := ParsePodLogPath(bad)
		require.False(t, ok, bad)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Root: "rel", Layout: "x", Selector: kube.SelectorConfig{K8sPodRegex: "("}, MaxLogSize: -1}.Validate()
	require.ErrorContains(t, err, "configName")
	require.ErrorContains(t, err, "absolute")
	require.ErrorContains(t, err, "layout")
	require.ErrorContains(t, err, "K8sPodRegex")
	require.ErrorContains(t, err, "MaxLogSize")
	require.ErrorContains(t, err, "Stdout and Stderr")
}
