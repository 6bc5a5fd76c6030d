package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/sluicelog/sluice/controller"
	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/api"
	"github.com/sluicelog/sluice/server/api/apiclient"
	"github.com/sluicelog/sluice/server/meta"
)

// buildOnce builds the binaries the tests run: the server with cgo (DuckDB),
// the others static, as the images have them (the agent runs chrooted into
// a root file system without a C library).
var (
	buildOnce sync.Once
	buildErr  error
)

func buildBinaries(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		for _, b := range []struct {
			cgo  string
			pkgs []string
		}{
			{"1", []string{"github.com/sluicelog/sluice/cmd/sluice-server"}},
			{"0", []string{"github.com/sluicelog/sluice/cmd/sluice-controller", "github.com/sluicelog/sluice/cmd/sluice-agent", "github.com/sluicelog/sluice/cmd/mocklog"}},
		} {
			cmd := exec.Command("go", append([]string{"build", "-o", binDir + "/"}, b.pkgs...)...)
			cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %v: %v: %s", b.pkgs, err, out)
				return
			}
		}
	})
	require.NoError(t, buildErr)
}

// seedCluster is the chart installed as documented (release sluice in
// namespace sluice): sluice-server and sluice-controller with the chart's
// args and env, the controller against envtest, the server reachable in
// pods as http://sluice-server.sluice.svc:8080.
type seedCluster struct {
	k8s      client.Client
	kube     *kubelet
	serverIP string
	admin    *sls.Client
	ctl      *proc
	server   *proc
	work     string
	objs     rendered
}

const seedClusterID = "seeds"

var (
	clusterOnce sync.Once
	cluster     *seedCluster
	clusterErr  error
	clusterStop []func()
)

// startSeedCluster starts the shared cluster once; the seeds tests run one
// after another and keep to their own projects, namespaces and groups.
func startSeedCluster(t *testing.T) *seedCluster {
	t.Helper()
	dir, err := testenv.EnvtestAssets()
	if err != nil {
		testenv.SkipOrFail(t, "%v", err)
	}
	requireNamespaces(t)
	buildBinaries(t)
	clusterOnce.Do(func() { cluster, clusterErr = newSeedCluster(dir) })
	require.NoError(t, clusterErr)
	cluster.kube = newKubelet(t, binDir, cluster.serverIP)
	return cluster
}

func stopSeedCluster() {
	for i := len(clusterStop) - 1; i >= 0; i-- {
		clusterStop[i]()
	}
}

func newSeedCluster(envDir string) (*seedCluster, error) {
	abs, err := filepath.Abs(envDir)
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: abs, CRDDirectoryPaths: []string{"../crds"}, ErrorIfCRDPathMissing: true,
		ControlPlaneStartTimeout: 2 * time.Minute, ControlPlaneStopTimeout: time.Minute,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("envtest: %w", err)
	}
	clusterStop = append(clusterStop, func() { _ = env.Stop() })
	c := &seedCluster{}
	if c.work, err = os.MkdirTemp("", "sluice-seeds-"); err != nil {
		return nil, err
	}
	clusterStop = append(clusterStop, func() { _ = os.RemoveAll(c.work) })
	if c.k8s, err = client.New(cfg, client.Options{}); err != nil {
		return nil, err
	}
	// The chart, rendered as `helm install sluice deploy/helm/sluice -n
	// sluice --set clusterId=seeds` would.
	c.objs, err = renderValues(map[string]any{
		"clusterId": seedClusterID,
		"server":    map[string]any{"adminKey": map[string]any{"id": adminID, "secret": adminKey}},
	})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := c.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return nil, err
	}
	secretObj := c.objs["Secret/sluice-admin-key"].(*corev1.Secret)
	if err := c.k8s.Create(ctx, secretObj.DeepCopy()); err != nil {
		return nil, err
	}
	secrets := map[string]map[string]string{secretObj.Name: secretObj.StringData}

	// sluice-server with the StatefulSet's args, on the Service's port at a
	// loopback address of its own.
	sts := c.objs["StatefulSet/sluice-server"].(*appsv1.StatefulSet)
	sc := sts.Spec.Template.Spec.Containers[0]
	if c.serverIP, err = loopbackServerIP(8080); err != nil {
		return nil, err
	}
	serverAddr := c.serverIP + ":8080"
	args, err := replaceArgErr(sc.Args, "listen", serverAddr)
	if err != nil {
		return nil, err
	}
	if args, err = replaceArgErr(args, "data-dir", filepath.Join(c.work, "data")); err != nil {
		return nil, err
	}
	senv, err := containerEnvErr(sc, secrets, nil, map[string]string{"TMPDIR": c.work})
	if err != nil {
		return nil, err
	}
	c.server = startProc(c.work, "sluice-server", args, senv)
	if c.server.err != nil {
		return nil, c.server.err
	}
	clusterStop = append(clusterStop, c.server.stop)
	if err := c.server.waitHTTP("http://" + serverAddr + sc.ReadinessProbe.HTTPGet.Path); err != nil {
		return nil, err
	}

	// sluice-controller with the Deployment's args, the Service host
	// dialled at the server's address.
	dep := c.objs["Deployment/sluice-controller"].(*appsv1.Deployment)
	cc := dep.Spec.Template.Spec.Containers[0]
	kubeconfig := filepath.Join(c.work, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		return nil, err
	}
	probeAddr := c.serverIP + ":18081"
	ctlArgs, err := replaceArgErr(cc.Args, "server-dial-address", serverAddr)
	if err != nil {
		return nil, err
	}
	if ctlArgs, err = replaceArgErr(ctlArgs, "health-probe-bind-address", probeAddr); err != nil {
		return nil, err
	}
	if ctlArgs, err = replaceArgErr(ctlArgs, "metrics-bind-address", "0"); err != nil {
		return nil, err
	}
	c.ctl = startProc(c.work, "sluice-controller", ctlArgs, map[string]string{"KUBECONFIG": kubeconfig})
	if c.ctl.err != nil {
		return nil, c.ctl.err
	}
	clusterStop = append(clusterStop, c.ctl.stop)
	if err := c.ctl.waitHTTP("http://" + probeAddr + cc.ReadinessProbe.HTTPGet.Path); err != nil {
		return nil, err
	}
	c.admin, err = controller.NewSLSClient(controller.SLSOptions{
		Endpoint: "http://sluice-server.sluice.svc:8080", DialAddress: serverAddr,
		Credentials: sls.NewStaticCredentialsProvider(adminID, adminKey, ""),
	})
	return c, err
}

// agentKey creates the key the migration table asks for (`sluice-server
// keys create --project P=write`) and the Secret sluice-agent-key holding
// it in namespace ns.
func (c *seedCluster) agentKey(t *testing.T, ns string, projects ...string) {
	t.Helper()
	cl, err := apiclient.New("http://"+c.serverIP+":8080", protocol.Credentials{AccessKeyID: adminID, AccessKeySecret: adminKey}, nil)
	require.NoError(t, err)
	perms := map[string]meta.Permission{}
	for _, p := range projects {
		perms[p] = meta.PermWrite
	}
	id, secret, err := cl.CreateKey(context.Background(), api.KeyRequest{Projects: perms, Description: "seeds " + ns})
	require.NoError(t, err)
	data := map[string]string{"accessKeyId": id, "accessKeySecret": secret}
	ensureNamespace(t, c.k8s, ns)
	obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sluice-agent-key", Namespace: ns}, StringData: data}
	if err := c.k8s.Create(context.Background(), obj); apierrors.IsAlreadyExists(err) {
		require.NoError(t, c.k8s.Update(context.Background(), obj))
	} else {
		require.NoError(t, err)
	}
	c.kube.secrets[ns+"/sluice-agent-key"] = data
}

// manifest reads a seeds file into objects.
func manifest(t *testing.T, name string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("seeds", name))
	require.NoError(t, err)
	return decodeManifest(t, name, data)
}

// decodeManifest reads YAML documents into objects with apimachinery's
// decoder, the one kubectl's file reader uses.
func decodeManifest(t *testing.T, name string, data []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			require.NoError(t, err, name)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// apply creates the objects in the API server (strict field validation:
// nothing the guide writes is unknown), in namespace ns when they have
// none, and deletes them when the test ends.
func (c *seedCluster) apply(t *testing.T, ns string, objs ...*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	ensureNamespace(t, c.k8s, ns)
	for _, o := range objs {
		o = o.DeepCopy()
		if o.GetNamespace() == "" {
			o.SetNamespace(ns)
		}
		require.NoError(t, c.k8s.Create(ctx, o, client.FieldValidation("Strict")), "%s %s", o.GetKind(), o.GetName())
		t.Cleanup(func() {
			// Background: a Job's default (orphan) waits for a garbage
			// collector envtest does not run, and the next seed's Job of the
			// same name could not be created.
			_ = c.k8s.Delete(context.Background(), o, client.PropagationPolicy(metav1.DeletePropagationBackground))
			if o.GetKind() == "AliyunLogConfig" { // its finalizer removes the config from the server
				require.Eventually(t, func() bool {
					return apierrors.IsNotFound(c.k8s.Get(context.Background(), client.ObjectKeyFromObject(o), o.DeepCopy()))
				}, time.Minute, 200*time.Millisecond, "AliyunLogConfig %s not removed", o.GetName())
			}
		})
	}
}

func ensureNamespace(t *testing.T, k8s client.Client, ns string) {
	err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// podSpecOf returns a workload's pod template spec and its replicas.
func podSpecOf(t *testing.T, u *unstructured.Unstructured) (corev1.PodSpec, int) {
	t.Helper()
	switch u.GetKind() {
	case "Deployment":
		var d appsv1.Deployment
		require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d))
		n := 1
		if d.Spec.Replicas != nil {
			n = int(*d.Spec.Replicas)
		}
		return d.Spec.Template.Spec, n
	case "Job":
		var j batchv1.Job
		require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &j))
		return j.Spec.Template.Spec, 1
	}
	t.Fatalf("%s is not a workload", u.GetKind())
	return corev1.PodSpec{}, 0
}

// crStatus waits until an AliyunLogConfig has a status and returns it.
func (c *seedCluster) crStatus(t *testing.T, ns, name string) (status, message string) {
	t.Helper()
	require.Eventually(t, func() bool {
		got := &unstructured.Unstructured{}
		got.SetAPIVersion("log.alibabacloud.com/v1alpha1")
		got.SetKind("AliyunLogConfig")
		if c.k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, got) != nil {
			return false
		}
		status, _, _ = unstructured.NestedString(got.Object, "status", "status")
		message, _, _ = unstructured.NestedString(got.Object, "status", "message")
		return status != ""
	}, time.Minute, 200*time.Millisecond, "AliyunLogConfig %s/%s never got a status\ncontroller:\n%s", ns, name, c.ctl.tail())
	return status, message
}

// logs queries a logstore until want(lines) holds.
func (c *seedCluster) logs(t *testing.T, project, logstore, query string, timeout time.Duration, want func([]map[string]string) bool, why func() string) []map[string]string {
	t.Helper()
	var got []map[string]string
	var err error
	deadline := time.Now().Add(timeout)
	for {
		var resp *sls.GetLogsResponse
		resp, err = c.admin.GetLogs(project, logstore, "", 0, time.Now().Add(time.Hour).Unix(), query, 100, 0, false)
		if err == nil {
			got = resp.Logs
			if want(got) {
				return got
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s %q: %d lines (%v)\n%s", project, logstore, query, len(got), err, why())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// consoleConfig creates what a user makes in the console: logstore,
// machine group (user-defined identity) and a Logtail config applied to it.
func (c *seedCluster) consoleConfig(t *testing.T, project, logstore, group, configJSON string) {
	t.Helper()
	ok, err := c.admin.CheckProjectExist(project)
	require.NoError(t, err)
	if !ok {
		_, err := c.admin.CreateProject(project, "seeds")
		require.NoError(t, err)
	}
	if ok, err := c.admin.CheckLogstoreExist(project, logstore); err == nil && !ok {
		require.NoError(t, c.admin.CreateLogStoreV2(project, &sls.LogStore{Name: logstore, TTL: 7, ShardCount: 1}))
		require.NoError(t, c.admin.CreateIndex(project, logstore, controller.DefaultIndex()))
	}
	if ok, err := c.admin.CheckMachineGroupExist(project, group); err == nil && !ok {
		require.NoError(t, c.admin.CreateMachineGroup(project, &sls.MachineGroup{Name: group, MachineIDType: "userdefined", MachineIDList: []string{group}}))
	}
	require.NoError(t, c.admin.CreateConfigString(project, configJSON))
	name := jsonField(t, configJSON, "configName")
	require.NoError(t, c.admin.ApplyConfigToMachineGroup(project, name, group))
	t.Cleanup(func() {
		_ = c.admin.RemoveConfigFromMachineGroup(project, name, group)
		_ = c.admin.DeleteConfig(project, name)
	})
}

func jsonField(t *testing.T, js, key string) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(js), &m))
	s, _ := m[key].(string)
	return s
}
