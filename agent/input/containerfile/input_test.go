package containerfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/input/file"
	"github.com/sluicelog/sluice/agent/kube"
	"github.com/sluicelog/sluice/agent/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memContainers is an in-memory node: the real watcher is tested against
// kube-apiserver in agent/kube.
type memContainers struct {
	mu   sync.Mutex
	pods []*corev1.Pod
	gen  uint64
}

func (m *memContainers) Containers(dst []kube.Container) []kube.Container {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.pods {
		dst = append(dst, kube.ContainersOf(p)...)
	}
	return dst
}
func (m *memContainers) Generation() uint64 { m.mu.Lock(); defer m.mu.Unlock(); return m.gen }
func (m *memContainers) VolumeName(context.Context, string, string) (string, error) {
	return "", errors.New("no claims here")
}
func (m *memContainers) set(pods ...*corev1.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pods = pods
	m.gen++
}

func podNamed(name, uid string, env string) *corev1.Pod {
	p := testPod()
	p.Name, p.UID = name, types.UID(uid)
	p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "COLLECT", Value: env})
	return p
}

func writeLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	for _, l := range lines {
		_, err = f.WriteString(l + "\n")
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
}

func TestDockerFileCollectsSelectedContainersThroughHostRoot(t *testing.T) {
	hostRoot := t.TempDir()
	emptyDir := func(uid string) string {
		return filepath.Join(hostRoot, "var/lib/kubelet/pods", uid, "volumes/kubernetes.io~empty-dir/logs")
	}
	writeLines(t, filepath.Join(emptyDir("uid-a"), "app.log"), "a1")
	writeLines(t, filepath.Join(emptyDir("uid-off"), "app.log"), "excluded")
	node := &memContainers{}
	node.set(podNamed("web-a", "uid-a", "yes"), podNamed("web-off", "uid-off", "no"))

	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	s := &pipelinetest.Recorder{}
	in, err := New(Config{
		File: file.Config{Name: "df", LogPath: "/var/log/app", FilePattern: "*.log", TailSizeKB: 1024, TailExisted: true,
			PollInterval: 20 * time.Millisecond, CloseRemovedAfter: 100 * time.Millisecond},
		Selector:            kube.SelectorConfig{IncludeEnv: map[string]string{"COLLECT": "yes"}},
		ExternalK8sLabelTag: map[string]string{"app": "app_label"},
		Map:                 MapOptions{HostRoot: hostRoot},
	}, s, Settings{Checkpoints: store, Containers: node})
	require.NoError(t, err)
	require.NoError(t, in.Start(context.Background()))
	defer func() { require.NoError(t, in.Shutdown(context.Background())) }()

	require.Eventually(t, func() bool { return len(s.Events()) == 1 }, 10*time.Second, 10*time.Millisecond)
	r := s.Events()[0]
	require.Equal(t, "a1", r.Content())
	require.Equal(t, map[string]string{"__path__": "/var/log/app/app.log", kube.TagNamespace: "prod", kube.TagPodName: "web-a",
		kube.TagPodUID: "uid-a", kube.TagContainerName: "app", kube.TagImageName: "web:1", kube.TagContainerIP: "",
		"app_label": "web"}, r.TagMap())

	// A pod that starts later is picked up (maxDepth 0: sub/ is not watched).
	writeLines(t, filepath.Join(emptyDir("uid-b"), "sub", "deep.log"), "b1")
	node.set(podNamed("web-a", "uid-a", "yes"), podNamed("web-off", "uid-off", "no"), podNamed("web-b", "uid-b", "yes"))
	writeLines(t, filepath.Join(emptyDir("uid-b"), "b.log"), "b2")
	require.Eventually(t, func() bool { return len(s.Events()) == 2 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, "b2", s.Events()[1].Content())
	require.Equal(t, "web-b", s.Events()[1].Tag(kube.TagPodName))

	// Pod a ends: its last lines are written, the pod leaves the node and
	// the kubelet removes its emptyDir; everything written is collected.
	var last []string
	for i := range 1000 {
		last = append(last, fmt.Sprintf("a-last-%d", i))
	}
	writeLines(t, filepath.Join(emptyDir("uid-a"), "app.log"), last...)
	node.set(podNamed("web-off", "uid-off", "no"), podNamed("web-b", "uid-b", "yes"))
	require.NoError(t, os.RemoveAll(emptyDir("uid-a")))
	require.Eventually(t, func() bool { return len(s.Events()) == 1002 }, 10*time.Second, 10*time.Millisecond)
	for _, r := range s.Events() {
		require.NotEqual(t, "excluded", r.Content())
	}
	require.Equal(t, "a-last-999", s.Events()[1001].Content())
}

func TestDockerFileNeedsContainers(t *testing.T) {
	_, err := New(Config{File: file.Config{Name: "x", LogPath: "/var/log"}}, &pipelinetest.Recorder{}, Settings{})
	require.ErrorContains(t, err, "DaemonSet")
}

// Blacklists of a dockerFile config name paths inside the container, as
// users write them; they must hold for the host paths the files are read
// through.
func TestDockerFileBlacklistsArePathsInsideTheContainer(t *testing.T) {
	hostRoot := t.TempDir()
	dir := filepath.Join(hostRoot, "var/lib/kubelet/pods/uid-a/volumes/kubernetes.io~empty-dir/logs")
	writeLines(t, filepath.Join(dir, "app.log"), "keep")
	writeLines(t, filepath.Join(dir, "debug.log"), "debug-file")
	writeLines(t, filepath.Join(dir, "tmp", "x.log"), "tmp-dir")
	writeLines(t, filepath.Join(dir, "sub", "y.log"), "sub-dir")
	node := &memContainers{}
	node.set(podNamed("web-a", "uid-a", "yes"))
	store, err := checkpoint.New(checkpoint.Config{}, checkpoint.Settings{})
	require.NoError(t, err)
	s := &pipelinetest.Recorder{}
	in, err := New(Config{
		File: file.Config{Name: "df", LogPath: "/var/log/app", FilePattern: "*.log", MaxDepth: 2, TailSizeKB: 1024, TailExisted: true,
			PollInterval: 20 * time.Millisecond,
			DirBlacklist: []string{"/var/log/app/tmp"}, FilepathBlacklist: []string{"/var/log/app/debug*.log"}},
		Map: MapOptions{HostRoot: hostRoot},
	}, s, Settings{Checkpoints: store, Containers: node})
	require.NoError(t, err)
	require.NoError(t, in.Start(context.Background()))
	defer func() { require.NoError(t, in.Shutdown(context.Background())) }()

	require.Eventually(t, func() bool { return len(s.Events()) >= 2 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // ten passes: nothing else may come
	require.ElementsMatch(t, []string{"keep", "sub-dir"}, s.Contents())
}
