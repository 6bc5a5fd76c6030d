package controller

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sluicelog/sluice/controller/api/v1alpha1"
)

// Branch tests: a fake API server and a fake Log Service. The envtest
// suite covers the same flows against real kube-apiserver and sluice-server.

func newBranchEnv(t *testing.T, objs ...client.Object) (*Reconciler, *fakeSLS, client.Client) {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, v1alpha1.AddToScheme(scheme))
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.AliyunLogConfig{}).Build()
	f := newFakeSLS()
	return &Reconciler{Client: c, SLS: f, ClusterID: "c1"}, f, c
}

func reconcileOnce(t *testing.T, r *Reconciler, obj client.Object) (ctrl.Result, error) {
	t.Helper()
	return r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}})
}

func getObj(t *testing.T, c client.Client, obj *v1alpha1.AliyunLogConfig) *v1alpha1.AliyunLogConfig {
	t.Helper()
	got := &v1alpha1.AliyunLogConfig{}
	require.NoError(t, c.Get(context.Background(), client.ObjectKeyFromObject(obj), got))
	return got
}

func TestReconcileCreatesEverythingOnceAndIsIdempotent(t *testing.T) {
	obj := loadSeed(t, "seed-sidecar-file.yaml")
	obj.Namespace = "default"
	r, f, c := newBranchEnv(t, obj)

	_, err := reconcileOnce(t, r, obj) // adds the finalizer only
	require.NoError(t, err)
	require.Contains(t, getObj(t, c, obj).Finalizers, Finalizer)
	require.Empty(t, f.mutations())

	_, err = reconcileOnce(t, r, obj)
	require.NoError(t, err)
	require.Equal(t, []string{
		"CreateProject k8s-log-sidecar-demo",
		"CreateMachineGroup nginx-log-sidecar",
		"CreateLogStore nginx-access",
		"CreateIndex nginx-access",
		"CreateConfig nginx-log-sidecar",
		"Apply nginx-log-sidecar nginx-log-sidecar",
	}, f.mutations())
	ls := f.logstores["k8s-log-sidecar-demo/nginx-access"]
	require.Equal(t, 3, ls.ShardCount)
	require.Equal(t, 30, ls.TTL)
	require.Equal(t, "userdefined", f.groups["k8s-log-sidecar-demo/nginx-log-sidecar"].MachineIDType)
	require.Contains(t, f.indexes["k8s-log-sidecar-demo/nginx-access"].Keys, "_pod_name_")

	got := getObj(t, c, obj)
	require.Equal(t, v1alpha1.StatusOK, got.Status.Status)
	require.EqualValues(t, 200, got.Status.StatusCode)
	require.True(t, meta.IsStatusConditionTrue(got.Status.Conditions, ConditionReady))
	require.Equal(t, got.Generation, got.Status.ObservedGeneration)

	res, err := reconcileOnce(t, r, obj)
	require.NoError(t, err)
	require.Len(t, f.mutations(), 6, "a second pass changes nothing on the server")
	require.Equal(t, defaultResync, res.RequeueAfter, "applied resources are re-checked periodically")

	// Drift: the config was deleted behind the controller's back.
	delete(f.configs, "k8s-log-sidecar-demo/nginx-log-sidecar")
	delete(f.applied, "k8s-log-sidecar-demo/nginx-log-sidecar")
	_, err = reconcileOnce(t, r, obj)
	require.NoError(t, err)
	require.Equal(t, []string{"CreateConfig nginx-log-sidecar", "Apply nginx-log-sidecar nginx-log-sidecar"}, f.mutations()[6:])
}

func TestReconcileLeavesExistingLogstoreAlone(t *testing.T) {
	obj := loadSeed(t, "seed-stdout.yaml")
	obj.Namespace = "default"
	obj.Finalizers = []string{Finalizer}
	r, f, _ := newBranchEnv(t, obj)
	f.projects["k8s-log-c1"] = true
	f.logstores["k8s-log-c1/k8s-stdout"] = &sls.LogStore{Name: "k8s-stdout", ShardCount: 7, TTL: 5}
	f.indexes["k8s-log-c1/k8s-stdout"] = DefaultIndex()
	_, err := reconcileOnce(t, r, obj)
	require.NoError(t, err)
	require.Equal(t, 7, f.logstores["k8s-log-c1/k8s-stdout"].ShardCount)
	require.NotContains(t, f.mutations(), "CreateLogStore k8s-stdout")
	require.NotContains(t, f.mutations(), "CreateIndex k8s-stdout")
}

func TestReconcileUpdatesChangedConfigAndMovesGroups(t *testing.T) {
	obj := loadSeed(t, "seed-sidecar-file.yaml")
	obj.Namespace = "default"
	obj.Finalizers = []string{Finalizer}
	r, f, c := newBranchEnv(t, obj)
	_, err := reconcileOnce(t, r, obj)
	require.NoError(t, err)

	cur := getObj(t, c, obj)
	var detail map[string]any
	require.NoError(t, json.Unmarshal(cur.Spec.LogtailConfig.InputDetail.Raw, &detail))
	detail["filePattern"] = "error.log"
	raw, _ := json.Marshal(detail)
	cur.Spec.LogtailConfig.InputDetail = &apiextensionsv1.JSON{Raw: raw}
	cur.Spec.MachineGroups = []string{"other-group"}
	require.NoError(t, c.Update(context.Background(), cur))

	_, err = reconcileOnce(t, r, obj)
	require.NoError(t, err)
	m := f.mutations()
	require.Contains(t, m, "UpdateConfig nginx-log-sidecar")
	require.Contains(t, m, "Apply nginx-log-sidecar other-group")
	require.Contains(t, m, "Remove nginx-log-sidecar nginx-log-sidecar")
	require.Contains(t, f.configs["k8s-log-sidecar-demo/nginx-log-sidecar"], `"filePattern":"error.log"`)
	require.Equal(t, []string{"other-group"}, f.applied["k8s-log-sidecar-demo/nginx-log-sidecar"])
}

func TestReconcileBadSpecSetsErrorStatusWithoutServerCalls(t *testing.T) {
	obj := loadSeed(t, "seed-sidecar-file.yaml")
	obj.Namespace = "default"
	obj.Finalizers = []string{Finalizer}
	obj.Spec.LogtailConfig.InputDetail = &apiextensionsv1.JSON{Raw: []byte(`{"logType":"common_reg_log","logPath":"/var/log","filePattern":"a.log","regex":"(unclosed","key":["a"]}`)}
	r, f, c := newBranchEnv(t, obj)
	res, err := reconcileOnce(t, r, obj)
	require.NoError(t, err, "a bad spec is not retried")
	require.Zero(t, res.RequeueAfter)
	got := getObj(t, c, obj)
	require.Equal(t, v1alpha1.StatusError, got.Status.Status)
	require.EqualValues(t, 400, got.Status.StatusCode)
	require.Contains(t, got.Status.Message, "spec.logtailConfig.inputDetail.regex")
	cond := meta.FindStatusCondition(got.Status.Conditions, ConditionReady)
	require.NotNil(t, cond)
	require.Equal(t, metav1.ConditionFalse, cond.Status)
	require.Equal(t, ReasonInvalidSpec, cond.Reason)
	require.Empty(t, f.mutations())
}

func TestReconcileServerErrorsBackOff(t *testing.T) {
	f := func(name string, injected error, wantErr bool, wantRequeue time.Duration, wantCode int32) {
		t.Run(name, func(t *testing.T) {
			obj := loadSeed(t, "seed-stdout.yaml")
			obj.Namespace = "default"
			obj.Finalizers = []string{Finalizer}
			r, fs, c := newBranchEnv(t, obj)
			fs.fail = func(call string) error {
				if call == "CreateLogStoreV2" {
					return injected
				}
				return nil
			}
			res, err := reconcileOnce(t, r, obj)
			if wantErr {
				require.Error(t, err, "transient errors go back to the rate-limited queue")
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, wantRequeue, res.RequeueAfter)
			got := getObj(t, c, obj)
			require.Equal(t, v1alpha1.StatusError, got.Status.Status)
			require.Equal(t, wantCode, got.Status.StatusCode)
			require.Contains(t, got.Status.Message, "create logstore k8s-stdout")
		})
	}
	f("503", slsErr(503, "ServerBusy"), true, 0, 503)
	f("500", slsErr(500, "InternalServerError"), true, 0, 500)
	f("unreachable", &sls.Error{HTTPCode: -1, Code: "ClientError", Message: "dial tcp: connection refused"}, true, 0, 0)
	f("401", slsErr(401, "SignatureNotMatch"), false, authRetryDelay, 401)
	f("400", slsErr(400, "LogStoreInfoInvalid"), false, permanentRetryDelay, 400)
}

func TestReconcileDeleteRemovesConfigOnly(t *testing.T) {
	obj := loadSeed(t, "seed-sidecar-file.yaml")
	obj.Namespace = "default"
	obj.Finalizers = []string{Finalizer}
	r, f, c := newBranchEnv(t, obj)
	_, err := reconcileOnce(t, r, obj)
	require.NoError(t, err)

	require.NoError(t, c.Delete(context.Background(), getObj(t, c, obj)))
	f.fail = func(call string) error {
		if call == "DeleteConfig" {
			return slsErr(503, "ServerBusy")
		}
		return nil
	}
	_, err = reconcileOnce(t, r, obj)
	require.Error(t, err, "the finalizer stays while the server refuses")
	require.Contains(t, getObj(t, c, obj).Finalizers, Finalizer)

	f.fail = nil
	_, err = reconcileOnce(t, r, obj)
	require.NoError(t, err)
	require.Contains(t, f.mutations(), "DeleteConfig nginx-log-sidecar")
	require.NotContains(t, f.configs, "k8s-log-sidecar-demo/nginx-log-sidecar")
	require.NotNil(t, f.logstores["k8s-log-sidecar-demo/nginx-access"], "the logstore and its data stay")
	err = c.Get(context.Background(), client.ObjectKeyFromObject(obj), &v1alpha1.AliyunLogConfig{})
	require.True(t, client.IgnoreNotFound(err) == nil && err != nil, "object is gone once the finalizer is removed")
}
