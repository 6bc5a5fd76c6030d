package kube

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/sluicelog/sluice/internal/testenv"
)

// The watcher is tested against a real kube-apiserver and etcd (envtest,
// binaries built by hack/ensure-envtest.sh into $SLUICE_CACHE/envtest).

var (
	apiClient  kubernetes.Interface // the test's own hands on the API
	coreClient *CoreClient          // what the watcher uses, as in the agent
	testEnv    *envtest.Environment
	skipWhy    string
)

func TestMain(m *testing.M) {
	code := func() int {
		env, err := startEnv()
		if err != nil {
			if testenv.RequireAll() {
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

func startEnv() (*envtest.Environment, error) {
	dir, err := testenv.EnvtestAssets()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{BinaryAssetsDirectory: dir,
		ControlPlaneStartTimeout: 2 * time.Minute, ControlPlaneStopTimeout: time.Minute}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	testEnv = env
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

// Env from ConfigMaps, as the kubelet builds it, against the API server:
// envFrom (with prefix), configMapKeyRef, optional references to missing
// maps, literal env overriding envFrom, and a required map created late.
func TestPodWatcherConfigMapEnv(t *testing.T) {
	needAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ns, node = "cmenv", "node-c"
	_, err := apiClient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	appConfig := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-config"},
		Data: map[string]string{"LEVEL": "debug", "TEAM": "payments", "MODE": "from-map"}}
	_, err = apiClient.CoreV1().ConfigMaps(ns).Create(ctx, appConfig, metav1.CreateOptions{})
	require.NoError(t, err)

	pod := testPod(ns, "uses-maps", node)
	app := &pod.Spec.Containers[0]
	app.EnvFrom = []corev1.EnvFromSource{
		{ConfigMapRef: cmRef("app-config", false), Prefix: "APP_"},
		{ConfigMapRef: cmRef("app-config", false)},
		{ConfigMapRef: cmRef("not-there", true)},
	}
	app.Env = append(app.Env,
		corev1.EnvVar{Name: "MODE", Value: "override"},
		corev1.EnvVar{Name: "TIER", ValueFrom: cmKey("app-config", "TEAM", false)},
		corev1.EnvVar{Name: "OPT", ValueFrom: cmKey("not-there", "X", true)})
	uses, err := apiClient.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	late := testPod(ns, "late-map", node)
	late.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: cmRef("late", false)}}
	late, err = apiClient.CoreV1().Pods(ns).Create(ctx, late, metav1.CreateOptions{})
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	w, err := NewPodWatcher(coreClient, WatcherConfig{NodeName: node, ConfigMapTTL: 300 * time.Millisecond},
		Settings{Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	defer func() { require.NoError(t, w.Shutdown(ctx)) }()
	require.NoError(t, w.WaitForSync(ctx))

	want := map[string]string{
		"APP_LEVEL": "debug", "APP_TEAM": "payments", "APP_MODE": "from-map",
		"LEVEL": "debug", "TEAM": "payments", "MODE": "override", "TIER": "payments",
		"STAGE": "prod", "MY_POD": "uses-maps",
	}
	c, ok := w.Container(string(uses.UID), "app")
	require.True(t, ok)
	require.Equal(t, want, c.Env, "what the kubelet gives the container; secrets are not read")

	sel, err := NewSelector(SelectorConfig{IncludeEnv: map[string]string{"TIER": "payments"}})
	require.NoError(t, err)
	require.True(t, sel.Match(&c), "IncludeEnv on a ConfigMap-sourced variable")
	sel, err = NewSelector(SelectorConfig{IncludeEnv: map[string]string{"APP_LEVEL": "^deb.*$"}, ExcludeEnv: map[string]string{"MODE": "from-map"}})
	require.NoError(t, err)
	require.True(t, sel.Match(&c), "prefixed envFrom keys; the literal MODE overrides the map's")
	var tags []string
	NewTagger(nil, map[string]string{"TEAM": "team"}).Add(&c, func(k, v string) { tags = append(tags, k+"="+v) })
	require.Contains(t, tags, "team=payments", "ExternalEnvTag from a ConfigMap")

	// A container's env is fixed when it starts: a later change of the map
	// does not show in an update of the running pod.
	appConfig.Data["TEAM"] = "billing"
	_, err = apiClient.CoreV1().ConfigMaps(ns).Update(ctx, appConfig, metav1.UpdateOptions{})
	require.NoError(t, err)
	time.Sleep(400 * time.Millisecond) // past the read cache's TTL
	uses.Status.PodIP = "10.9.9.9"
	_, err = apiClient.CoreV1().Pods(ns).UpdateStatus(ctx, uses, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		c, _ := w.Container(string(uses.UID), "app")
		return c.PodIP == "10.9.9.9"
	}, 30*time.Second, 20*time.Millisecond)
	c, _ = w.Container(string(uses.UID), "app")
	require.Equal(t, "payments", c.Env["TIER"])

	// A required map missing: the kubelet would not start the container
	// until it exists; once it does, the watcher reads it again.
	c, ok = w.Container(string(late.UID), "app")
	require.True(t, ok)
	require.NotContains(t, c.Env, "READY")
	gen := w.Generation()
	_, err = apiClient.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "late"},
		Data: map[string]string{"READY": "yes"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		c, _ := w.Container(string(late.UID), "app")
		return c.Env["READY"] == "yes"
	}, 30*time.Second, 50*time.Millisecond)
	require.NotEqual(t, gen, w.Generation(), "users see the change")

	reads := map[string]float64{}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "sluice_agent_kube_configmap_reads_total" {
			for _, m := range mf.GetMetric() {
				reads[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	require.GreaterOrEqual(t, reads["ok"], 2.0, "app-config, then late")
	require.GreaterOrEqual(t, reads["not_found"], 2.0, "not-there, late")
	require.Zero(t, reads["error"])
}

// An agent whose ClusterRole lacks get on configmaps (a chart from before
// env from ConfigMaps was read): the reads fail, are counted and logged
// with the fix, and the rest of the metadata is there.
func TestPodWatcherConfigMapForbidden(t *testing.T) {
	needAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ns, node = "cmdenied", "node-d"
	_, err := apiClient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = apiClient.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-config"},
		Data: map[string]string{"TEAM": "payments"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod := testPod(ns, "p", node)
	pod.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: cmRef("app-config", false)}}
	pod, err = apiClient.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)

	_, err = apiClient.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pods-only"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}}},
		metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = apiClient.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pods-only"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "pods-only"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "agent-pods-only"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	user, err := testEnv.ControlPlane.AddUser(envtest.User{Name: "agent-pods-only"}, nil)
	require.NoError(t, err)
	client, err := NewCoreClient(user.Config())
	require.NoError(t, err)

	var logs bytes.Buffer
	var logMu sync.Mutex
	reg := prometheus.NewRegistry()
	w, err := NewPodWatcher(client, WatcherConfig{NodeName: node},
		Settings{Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil)), Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	defer func() { require.NoError(t, w.Shutdown(ctx)) }()
	require.NoError(t, w.WaitForSync(ctx))

	c, ok := w.Container(string(pod.UID), "app")
	require.True(t, ok)
	require.Equal(t, map[string]string{"STAGE": "prod", "MY_POD": "p"}, c.Env, "the map's variables unset, the rest there")
	n, err := testutil.GatherAndCount(reg, "sluice_agent_kube_configmap_reads_total")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP sluice_agent_kube_configmap_reads_total ConfigMaps read for container env (envFrom, configMapKeyRef) by result (ok, not_found, error); variables of unread maps are unset, so selection by them misses the container.
# TYPE sluice_agent_kube_configmap_reads_total counter
sluice_agent_kube_configmap_reads_total{result="error"} 1
`), "sluice_agent_kube_configmap_reads_total"))
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	require.Contains(t, out, "configmap="+ns+"/app-config")
	require.Contains(t, out, "needs get on configmaps")
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
