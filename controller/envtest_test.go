package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/sluicelog/sluice/controller/api/v1alpha1"
	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/server/app"
)

// The integration suite: one real kube-apiserver + etcd (envtest, binaries
// built by hack/ensure-envtest.sh) and one real in-process sluice-server per
// package run, with the controller running in a manager against both.

const (
	itClusterID   = "it"
	itBaseDomain  = "sluice.localhost"
	itAdminID     = "controller-it"
	itAdminSecret = "controller-it-secret-0123456789"
)

type integration struct {
	k8s      client.Client
	defaults chan struct{} // closed once Defaults created its objects
	sls      *sls.Client   // a second SDK client, for assertions
	skipWhy  string
	teardown []func()
}

var suite integration

func TestMain(m *testing.M) {
	code := func() int {
		if err := suite.start(); err != nil {
			if testenv.RequireAll() {
				fmt.Fprintln(os.Stderr, "controller integration suite:", err)
				return 1
			}
			suite.skipWhy = err.Error()
		}
		rc := m.Run()
		suite.stop()
		if rc == 0 {
			if err := goleak.Find(leakIgnores()...); err != nil {
				fmt.Fprintln(os.Stderr, "goroutine leak:", err)
				return 1
			}
		}
		return rc
	}()
	os.Exit(code)
}

// leakIgnores lists goroutines that outlive a stopped manager by design:
// idle HTTP keep-alive connections and client-go/klog background loops.
func leakIgnores() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
		goleak.IgnoreAnyFunction("k8s.io/client-go/util/workqueue.(*delayingType[...]).waitingLoop"),
	}
}

func needEnv(t *testing.T) {
	t.Helper()
	if suite.skipWhy != "" {
		t.Skip(suite.skipWhy)
	}
}

func (s *integration) start() error {
	// controller-runtime's internals log through its global logger.
	ctrl.SetLogger(logr.Discard())
	dir, err := testenv.EnvtestAssets()
	if err != nil {
		return err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		CRDDirectoryPaths:        []string{filepath.Dir(crdPath)},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute, // a loaded 2-core CI machine
		ControlPlaneStopTimeout:  time.Minute,
	}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("start envtest: %w", err)
	}
	s.teardown = append(s.teardown, func() { _ = env.Stop() })

	dataDir, err := os.MkdirTemp("", "sluice-controller-it-")
	if err != nil {
		return err
	}
	s.teardown = append(s.teardown, func() { _ = os.RemoveAll(dataDir) })
	srv, err := app.New(app.Config{
		Listen: "127.0.0.1:0", DataDir: dataDir, BaseDomain: itBaseDomain,
		AdminKeyID: itAdminID, AdminKeySecret: itAdminSecret,
	}, app.Settings{})
	if err != nil {
		return fmt.Errorf("sluice-server: %w", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		return fmt.Errorf("start sluice-server: %w", err)
	}
	s.teardown = append(s.teardown, func() { _ = srv.Shutdown(context.Background()) })
	_, port, err := net.SplitHostPort(srv.Addr())
	if err != nil {
		return err
	}
	newSLS := func() (*sls.Client, error) {
		return NewSLSClient(SLSOptions{
			Endpoint: "http://" + itBaseDomain + ":" + port, DialAddress: srv.Addr(),
			Credentials: sls.NewStaticCredentialsProvider(itAdminID, itAdminSecret, ""),
		})
	}
	reconcilerSLS, err := newSLS()
	if err != nil {
		return err
	}
	if s.sls, err = newSLS(); err != nil {
		return err
	}

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, eventsv1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	s.defaults = make(chan struct{})
	oplog := &OperationLog{Writer: reconcilerSLS, ClusterID: itClusterID, FlushInterval: 200 * time.Millisecond}
	for _, runnable := range []manager.Runnable{
		&Defaults{SLS: reconcilerSLS, ClusterID: itClusterID, RetryInterval: time.Second, Done: s.defaults},
		oplog,
	} {
		if err := mgr.Add(runnable); err != nil {
			return err
		}
	}
	r := &Reconciler{Client: mgr.GetClient(), SLS: reconcilerSLS, ClusterID: itClusterID, Recorder: mgr.GetEventRecorder("sluice-controller"), OperationLog: oplog}
	if err := r.SetupWithManager(mgr); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	s.teardown = append(s.teardown, func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "controller manager:", err)
		}
	})
	if s.k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	return nil
}

func (s *integration) stop() {
	for i := len(s.teardown) - 1; i >= 0; i-- {
		s.teardown[i]()
	}
}

func createNamespace(t *testing.T, name string) {
	t.Helper()
	err := suite.k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

func readSeedUnstructured(t *testing.T, name, namespace string) *unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	u := &unstructured.Unstructured{}
	require.NoError(t, yaml.Unmarshal(raw, &u.Object))
	u.SetNamespace(namespace)
	return u
}

// The CRD is served with server-side validation, and manifests written for
// the Logtail controller are accepted unchanged: with strict field
// validation nothing is unknown, and nothing is pruned.
func TestEnvtestSeedManifestsApplyUnchanged(t *testing.T) {
	needEnv(t)
	ctx := context.Background()
	createNamespace(t, "seeds")
	for _, name := range []string{"seed-stdout.yaml", "seed-sidecar-file.yaml", "seed-daemonset-file.yaml"} {
		u := readSeedUnstructured(t, name, "seeds")
		want, _, err := unstructured.NestedMap(u.Object, "spec")
		require.NoError(t, err)
		require.NoError(t, suite.k8s.Create(ctx, u, client.FieldValidation("Strict")), name)
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(u.GroupVersionKind())
		require.NoError(t, suite.k8s.Get(ctx, client.ObjectKeyFromObject(u), got))
		gotSpec, _, err := unstructured.NestedMap(got.Object, "spec")
		require.NoError(t, err)
		wantJSON, err := json.Marshal(want)
		require.NoError(t, err)
		gotJSON, err := json.Marshal(gotSpec)
		require.NoError(t, err)
		require.JSONEq(t, string(wantJSON), string(gotJSON), "%s: the API server kept the spec as written", name)
	}
}

func TestEnvtestRejectsInvalidSpecs(t *testing.T) {
	needEnv(t)
	ctx := context.Background()
	createNamespace(t, "invalid")
	f := func(name string, mutate func(u *unstructured.Unstructured), wantField string) {
		t.Run(name, func(t *testing.T) {
			u := readSeedUnstructured(t, "seed-stdout.yaml", "invalid")
			u.SetName("invalid-" + strings.ReplaceAll(name, " ", "-"))
			mutate(u)
			err := suite.k8s.Create(ctx, u, client.FieldValidation("Strict"))
			require.Error(t, err)
			require.Contains(t, err.Error(), wantField)
		})
	}
	set := func(v any, path ...string) func(u *unstructured.Unstructured) {
		return func(u *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(u.Object, v, path...))
		}
	}
	f("shards", set(int64(50), "spec", "shardCount"), "spec.shardCount")
	f("lifecycle", set(int64(0), "spec", "lifeCycle"), "spec.lifeCycle")
	f("input type", set("tcp", "spec", "logtailConfig", "inputType"), "spec.logtailConfig.inputType")
	f("log type", set("xml_log", "spec", "logtailConfig", "inputDetail", "logType"), "spec.logtailConfig.inputDetail.logType")
	f("unknown field", set("x", "spec", "logstoreColour"), "logstoreColour")
	f("missing logstore", func(u *unstructured.Unstructured) { unstructured.RemoveNestedField(u.Object, "spec", "logstore") }, "spec.logstore")
}

func getConfig(t *testing.T, ns, name string) *v1alpha1.AliyunLogConfig {
	t.Helper()
	obj := &v1alpha1.AliyunLogConfig{}
	require.NoError(t, suite.k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj))
	return obj
}

func TestEnvtestCreateUpdateDelete(t *testing.T) {
	needEnv(t)
	ctx := context.Background()
	createNamespace(t, "lifecycle")
	obj := loadSeed(t, "seed-sidecar-file.yaml")
	obj.Namespace = "lifecycle"
	// Its own project: the seed test applies the same manifest elsewhere.
	obj.Spec.Project = "k8s-log-lifecycle"
	require.NoError(t, suite.k8s.Create(ctx, obj))
	const project, logstore, config, group = "k8s-log-lifecycle", "nginx-access", "nginx-log-sidecar", "nginx-log-sidecar"

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got := getConfig(t, obj.Namespace, obj.Name)
		assert.Equal(c, v1alpha1.StatusOK, got.Status.Status, got.Status.Message)
		assert.EqualValues(c, 200, got.Status.StatusCode)
		assert.Equal(c, got.Generation, got.Status.ObservedGeneration)
	}, 60*time.Second, 200*time.Millisecond)

	// The server holds what the resource asked for.
	ls, err := suite.sls.GetLogStore(project, logstore)
	require.NoError(t, err)
	require.Equal(t, 3, ls.ShardCount)
	require.Equal(t, 30, ls.TTL)
	idx, err := suite.sls.GetIndex(project, logstore)
	require.NoError(t, err)
	require.NotNil(t, idx.Line, "full-text index")
	require.Contains(t, idx.Keys, "_namespace_")
	require.Contains(t, idx.Keys, "__tag__:__path__")
	mg, err := suite.sls.GetMachineGroup(project, group)
	require.NoError(t, err)
	require.Equal(t, "userdefined", mg.MachineIDType)
	require.Equal(t, []string{group}, mg.MachineIDList)
	body, err := suite.sls.GetConfigString(project, config)
	require.NoError(t, err)
	require.Contains(t, body, `"filePattern":"access.log"`)
	require.Contains(t, body, `"logstoreName":"nginx-access"`)
	require.Contains(t, body, `"localStorage":true`, "SDK defaults filled in")
	applied, err := suite.sls.GetAppliedMachineGroups(project, config)
	require.NoError(t, err)
	require.Equal(t, []string{group}, applied)

	// Events tell the user what happened.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var evs eventsv1.EventList
		assert.NoError(c, suite.k8s.List(ctx, &evs, client.InNamespace(obj.Namespace)))
		var notes []string
		for _, e := range evs.Items {
			if e.Regarding.Name == obj.Name {
				notes = append(notes, e.Note)
			}
		}
		assert.Contains(c, strings.Join(notes, "\n"), "created config nginx-log-sidecar")
		assert.Contains(c, strings.Join(notes, "\n"), "created logstore nginx-access (3 shards, 30 days)")
	}, 30*time.Second, 200*time.Millisecond)

	// Update: a new file pattern reaches the server.
	require.NoError(t, retryUpdate(ctx, obj, func(o *v1alpha1.AliyunLogConfig) {
		o.Spec.LogtailConfig.InputDetail = &apiextensionsv1.JSON{Raw: []byte(strings.Replace(string(o.Spec.LogtailConfig.InputDetail.Raw), `"access.log"`, `"error.log"`, 1))}
	}))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		body, err := suite.sls.GetConfigString(project, config)
		assert.NoError(c, err)
		assert.Contains(c, body, `"filePattern":"error.log"`)
		got := getConfig(t, obj.Namespace, obj.Name)
		assert.Equal(c, got.Generation, got.Status.ObservedGeneration)
		assert.Equal(c, v1alpha1.StatusOK, got.Status.Status)
	}, 60*time.Second, 200*time.Millisecond)

	// Delete: the config goes, the logstore (and its data) stays.
	require.NoError(t, suite.k8s.Delete(ctx, obj))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		err := suite.k8s.Get(ctx, client.ObjectKeyFromObject(obj), &v1alpha1.AliyunLogConfig{})
		assert.True(c, apierrors.IsNotFound(err), "object deleted once the finalizer ran: %v", err)
	}, 60*time.Second, 200*time.Millisecond)
	exists, err := suite.sls.CheckConfigExist(project, config)
	require.NoError(t, err)
	require.False(t, exists, "config deleted")
	exists, err = suite.sls.CheckLogstoreExist(project, logstore)
	require.NoError(t, err)
	require.True(t, exists, "logstore kept")
}

func TestEnvtestBadSpecReportsField(t *testing.T) {
	needEnv(t)
	ctx := context.Background()
	createNamespace(t, "badspec")
	obj := loadSeed(t, "seed-sidecar-file.yaml")
	obj.Namespace, obj.Name = "badspec", "bad-regex"
	obj.Spec.Project = "k8s-log-badspec"
	obj.Spec.MachineGroups = nil // the cluster's default group
	obj.Spec.LogtailConfig.ConfigName = "bad-regex"
	obj.Spec.LogtailConfig.InputDetail = &apiextensionsv1.JSON{Raw: []byte(`{"logType":"common_reg_log","logPath":"/var/log","filePattern":"a.log","regex":"(unclosed","key":["a"]}`)}
	require.NoError(t, suite.k8s.Create(ctx, obj), "the schema cannot see a broken regex; the controller does")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got := getConfig(t, obj.Namespace, obj.Name)
		assert.Equal(c, v1alpha1.StatusError, got.Status.Status)
		assert.EqualValues(c, 400, got.Status.StatusCode)
		assert.Contains(c, got.Status.Message, "spec.logtailConfig.inputDetail.regex")
	}, 60*time.Second, 200*time.Millisecond)
	exists, err := suite.sls.CheckProjectExist("k8s-log-badspec")
	require.NoError(t, err)
	require.False(t, exists, "nothing is created for a bad spec")

	// Fixing the spec heals it.
	require.NoError(t, retryUpdate(ctx, obj, func(o *v1alpha1.AliyunLogConfig) {
		o.Spec.LogtailConfig.InputDetail = &apiextensionsv1.JSON{Raw: []byte(`{"logType":"common_reg_log","logPath":"/var/log","filePattern":"a.log","regex":"(.*)","key":["a"]}`)}
	}))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, v1alpha1.StatusOK, getConfig(t, obj.Namespace, obj.Name).Status.Status)
	}, 60*time.Second, 200*time.Millisecond)
	// The default machine group of the cluster was used.
	applied, err := suite.sls.GetAppliedMachineGroups("k8s-log-badspec", "bad-regex")
	require.NoError(t, err)
	require.Equal(t, []string{DefaultMachineGroup(itClusterID)}, applied)
}

func retryUpdate(ctx context.Context, obj *v1alpha1.AliyunLogConfig, mutate func(*v1alpha1.AliyunLogConfig)) error {
	for range 10 {
		cur := &v1alpha1.AliyunLogConfig{}
		if err := suite.k8s.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
			return err
		}
		mutate(cur)
		err := suite.k8s.Update(ctx, cur)
		if !apierrors.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("update %s: conflicts persisted", obj.Name)
}
