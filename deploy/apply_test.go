package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluicelog/sluice/internal/testenv"
)

// The API server the manifests are applied to: one envtest control plane
// (kube-apiserver + etcd built by hack/ensure-envtest.sh) per package run,
// started by the first test that needs it and stopped by TestMain.
type apiServer struct {
	once   sync.Once
	env    *envtest.Environment
	client client.Client
	err    error
}

var api apiServer

func TestMain(m *testing.M) {
	// envtest logs through controller-runtime's global logger.
	ctrllog.SetLogger(logr.Discard())
	code := m.Run()
	if api.env != nil {
		if err := api.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}
	if code == 0 {
		if err := goleak.Find(leakIgnores()...); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// leakIgnores: goroutines that outlive a stopped API server client by
// design (idle keep-alive connections, klog's flush loop).
func leakIgnores() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
	}
}

// needAPIServer returns a client of the shared API server, skipping the test
// when the binaries are missing (failing with SLUICE_REQUIRE_ALL=1).
func needAPIServer(t *testing.T) client.Client {
	t.Helper()
	api.once.Do(func() { api.err = api.start() })
	if api.err != nil {
		testenv.SkipOrFail(t, "%v", api.err)
	}
	return api.client
}

func (s *apiServer) start() error {
	dir, err := testenv.EnvtestAssets()
	if err != nil {
		return err
	}
	s.env = &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		CRDDirectoryPaths:        []string{filepath.Dir(crdFile)},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute, // a loaded 2-core CI machine
		ControlPlaneStopTimeout:  time.Minute,
	}
	cfg, err := s.env.Start()
	if err != nil {
		s.env = nil
		return fmt.Errorf("start envtest: %w", err)
	}
	s.client, err = client.New(cfg, client.Options{})
	return err
}

// applyDryRun sends every object to the API server as `kubectl apply
// --server-side --dry-run=server --field-manager=sluice-deploy-test` with
// strict field validation: schema, unknown fields, defaulting and the
// validation of every built-in type run; nothing is stored. Namespaced
// objects without a namespace go to ns. Namespaces the objects name are
// created for real (a dry-run object in a missing namespace is refused).
func applyDryRun(t *testing.T, c client.Client, ns string, objs []*unstructured.Unstructured) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ensureNamespace(t, ctx, c, ns)
	var errs []string
	for _, o := range objs {
		o = o.DeepCopy()
		namespaced, err := c.IsObjectNamespaced(o)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s %s: %v", o.GetKind(), o.GetName(), err))
			continue
		}
		if namespaced {
			if o.GetNamespace() == "" {
				o.SetNamespace(ns)
			}
			ensureNamespace(t, ctx, c, o.GetNamespace())
		}
		// client.Apply is deprecated for Client.Apply, which has no
		// FieldValidation option; strict validation is what this checks.
		err = c.Patch(ctx, o, client.Apply, //nolint:staticcheck // SA1019, see above
			client.FieldOwner("sluice-deploy-test"), client.ForceOwnership,
			client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("the API server refused:\n%s", strings.Join(errs, "\n"))
	}
	return nil
}

func ensureNamespace(t *testing.T, ctx context.Context, c client.Client, name string) {
	t.Helper()
	err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err, "create namespace %s", name)
	}
}

func TestChartAppliesToAPIServer(t *testing.T) {
	c := needAPIServer(t)
	for name, values := range map[string]map[string]any{
		"defaults": nil,
		"one namespace, external server": {
			"server":         map[string]any{"enabled": false},
			"externalServer": map[string]any{"endpoint": "https://logs.example.com", "dialAddress": "10.0.0.5:443"},
			"controller":     map[string]any{"watchNamespace": "apps", "replicas": 2, "credentialsSecret": "ctl"},
			"agent":          map[string]any{"credentialsSecret": "agent", "dockerContainers": true, "priorityClassName": "system-node-critical"},
		},
		"ephemeral server": {"server": map[string]any{"persistence": map[string]any{"enabled": false}}},
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, applyDryRun(t, c, testNamespace, chartObjects(t, values)))
		})
	}
}

func TestExamplesApplyToAPIServer(t *testing.T) {
	c := needAPIServer(t)
	for _, path := range exampleFiles(t) {
		t.Run(path, func(t *testing.T) {
			require.NoError(t, applyDryRun(t, c, "examples", exampleObjects(t, path)))
		})
	}
}

// TestBrokenManifestsAreRefused shows the apply check can fail: mistakes
// the API server catches and a YAML check would not.
func TestBrokenManifestsAreRefused(t *testing.T) {
	c := needAPIServer(t)
	base := exampleObjects(t, examplesDir+"/sidecar/deployment.yaml")
	for name, tc := range map[string]struct {
		break_ func(o *unstructured.Unstructured)
		want   string
	}{
		"misspelt field": {func(o *unstructured.Unstructured) {
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			cs[1].(map[string]any)["livenesProbe"] = map[string]any{}
			require.NoError(t, unstructured.SetNestedSlice(o.Object, cs, "spec", "template", "spec", "containers"))
		}, "livenesProbe"},
		"selector does not match labels": {func(o *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedStringMap(o.Object, map[string]string{"app": "other"}, "spec", "selector", "matchLabels"))
		}, "selector"},
		"volume mounted but not declared": {func(o *unstructured.Unstructured) {
			unstructured.RemoveNestedField(o.Object, "spec", "template", "spec", "volumes")
		}, "volumeMounts"},
	} {
		t.Run(name, func(t *testing.T) {
			dep := find(base, "Deployment", "").DeepCopy()
			tc.break_(dep)
			err := applyDryRun(t, c, "examples", []*unstructured.Unstructured{dep})
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("bad AliyunLogConfig", func(t *testing.T) {
		cr := find(exampleObjects(t, examplesDir+"/daemonset/aliyunlogconfigs.yaml"), "AliyunLogConfig", "").DeepCopy()
		require.NoError(t, unstructured.SetNestedField(cr.Object, int64(50), "spec", "shardCount"))
		err := applyDryRun(t, c, "examples", []*unstructured.Unstructured{cr})
		require.Error(t, err)
		require.Contains(t, err.Error(), "shardCount")
	})
}
