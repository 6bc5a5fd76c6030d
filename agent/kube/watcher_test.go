package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// The watcher is tested against a real kube-apiserver and etcd (envtest,
// binaries built by hack/ensure-envtest.sh into $SLUICE_CACHE/envtest).

var (
	apiClient  kubernetes.Interface // the test's own hands on the API
	coreClient *CoreClient          // what the watcher uses, as in the agent
	skipWhy    string
)

func TestMain(m *testing.M) {
	code := func() int {
		env, err := startEnv()
		if err != nil {
			if os.Getenv("SLUICE_REQUIRE_ALL") == "1" {
				fmt.Fprintln(os.Stderr, "kube integration tests:", err)
				return 1
			}
			skipWhy = err.Error()
		}
		if env != nil {
			defer func() { _ = env.Stop() }()
		}
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
			goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func envtestDir() string {
	if c := os.Getenv("SLUICE_CACHE"); c != "" {
		return filepath.Join(c, "envtest")
	}
	return filepath.Join("..", "..", ".cache", "envtest")
}

func startEnv() (*envtest.Environment, error) {
	dir, err := filepath.Abs(envtestDir())
	if err != nil {
		return nil, err
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return nil, fmt.Errorf("envtest binaries missing in %s (run hack/ensure-envtest.sh): %w", dir, err)
		}
	}
	env := &envtest.Environment{BinaryAssetsDirectory: dir,
		ControlPlaneStartTimeout: 2 * time.Minute, ControlPlaneStopTimeout: time.Minute}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	if apiClient, err = kubernetes.NewForConfig(cfg); err != nil {
		_ = env.Stop()
		return nil, err
	}
	if coreClient, err = NewCoreClient(cfg); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return env, nil
}

func needAPI(t *testing.T) {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
}

func testPod(ns, name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name, "team": "logs"}},
		Spec: corev1.PodSpec{
			NodeName: node,
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.example/app:1.2",
				Env: []corev1.EnvVar{
					{Name: "STAGE", Value: "prod"},
					{Name: "MY_POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}},
				},
			}},
			InitContainers: []corev1.Container{{Name: "sidecar", Image: "sidecar:1",
				RestartPolicy: func() *corev1.ContainerRestartPolicy { p := corev1.ContainerRestartPolicyAlways; return &p }()}},
		},
	}
}

func TestPodWatcherAgainstAPIServer(t *testing.T) {
	needAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "watch"}}
	_, err := apiClient.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	require.NoError(t, err)

	// One pod existing before the watch starts, one after; one on another node.
	before, err := apiClient.CoreV1().Pods("watch").Create(ctx, testPod("watch", "before", "node-a"), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = apiClient.CoreV1().Pods("watch").Create(ctx, testPod("watch", "elsewhere", "node-b"), metav1.CreateOptions{})
	require.NoError(t, err)

	w, err := NewPodWatcher(coreClient, WatcherConfig{NodeName: "node-a", Grace: 200 * time.Millisecond}, Settings{})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	defer func() { require.NoError(t, w.Shutdown(ctx)) }()
	require.NoError(t, w.WaitForSync(ctx))

	c, ok := w.Container(string(before.UID), "app")
	require.True(t, ok)
	require.Equal(t, "watch", c.Namespace)
	require.Equal(t, "before", c.PodName)
	require.Equal(t, "registry.example/app:1.2", c.Image)
	require.Equal(t, map[string]string{"STAGE": "prod", "MY_POD": "before"}, c.Env, "secret references are not resolved")
	require.Equal(t, "logs", c.PodLabels["team"])
	require.True(t, c.Known)
	_, ok = w.Container(string(before.UID), "sidecar")
	require.True(t, ok, "native sidecars (init containers) are containers too")

	var all []Container
	for _, c := range w.Containers(nil) {
		all = append(all, c)
		require.NotEqual(t, "elsewhere", c.PodName, "pods of other nodes are not watched")
	}
	require.Len(t, all, 2)

	// A pod created later, and its IP once the status says so.
	gen := w.Generation()
	after, err := apiClient.CoreV1().Pods("watch").Create(ctx, testPod("watch", "after", "node-a"), metav1.CreateOptions{})
	require.NoError(t, err)
	after.Status.PodIP = "10.1.2.3"
	after.Status.PodIPs = []corev1.PodIP{{IP: "10.1.2.3"}}
	_, err = apiClient.CoreV1().Pods("watch").UpdateStatus(ctx, after, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		c, ok := w.Container(string(after.UID), "app")
		return ok && c.PodIP == "10.1.2.3"
	}, 30*time.Second, 20*time.Millisecond)
	require.NotEqual(t, gen, w.Generation())

	// Deleted: kept for Grace (its last lines still get tags), then gone.
	require.NoError(t, apiClient.CoreV1().Pods("watch").Delete(ctx, "before", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}))
	require.Eventually(t, func() bool { return len(w.Containers(nil)) == 2 }, 30*time.Second, 20*time.Millisecond,
		"the deleted pod's containers leave Containers after Grace")
	_, ok = w.Container(string(before.UID), "app")
	require.True(t, ok, "still answered by Container until pruned")

	// PVC → PV for dockerFile host paths.
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "watch", Name: "logs"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			VolumeName:  "pv-logs-1",
		},
	}
	_, err = apiClient.CoreV1().PersistentVolumeClaims("watch").Create(ctx, pvc, metav1.CreateOptions{})
	require.NoError(t, err)
	name, err := w.VolumeName(ctx, "watch", "logs")
	require.NoError(t, err)
	require.Equal(t, "pv-logs-1", name)
	_, err = w.VolumeName(ctx, "watch", "absent")
	require.ErrorContains(t, err, "watch/absent")
}

func TestPodWatcherConfigErrors(t *testing.T) {
	_, err := NewPodWatcher(nil, WatcherConfig{NodeName: "n"}, Settings{})
	require.Error(t, err)
}
