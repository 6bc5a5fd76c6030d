// Package test runs the Helm chart's wiring end to end with real
// processes: the chart is rendered (Helm's Go packages), and sluice-server,
// sluice-controller and sluice-agent are started with exactly the args and
// environment the chart gives their containers — only what a cluster would
// supply is substituted (listen addresses and Service host → 127.0.0.1
// ports, host paths → a temporary directory, downward-API and Secret
// references → their values). The controller runs against a real
// kube-apiserver (envtest). An AliyunLogConfig applied to the API server must
// reach the agent through the controller, the server and the agent's
// machine group k8s-group-<clusterId>, and the lines the agent collects must
// be queryable in the server. Flags or env names the chart gets wrong fail
// here.
package test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluicelog/sluice/controller"
	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/mocklog"
)

const (
	release   = "sluice"
	namespace = "sluice"
	clusterID = "e2e"
	adminID   = "chart-e2e-admin"
	adminKey  = "chart-e2e-secret-0123456789abcdef"
)

var binDir string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "sluice-chart-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binDir = dir
		// envtest logs through controller-runtime's global logger.
		ctrllog.SetLogger(logr.Discard())
		code := m.Run()
		stopSeedCluster()
		if code == 0 {
			if err := goleak.Find(
				goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
				goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
				goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
			); err != nil {
				fmt.Fprintln(os.Stderr, "goroutine leak:", err)
				return 1
			}
		}
		return code
	}()
	os.Exit(code)
}

// rendered is the chart's output decoded by kind/name.
type rendered map[string]runtime.Object

func render(t *testing.T) rendered {
	t.Helper()
	res, err := renderValues(map[string]any{
		"clusterId": clusterID,
		"server":    map[string]any{"adminKey": map[string]any{"id": adminID, "secret": adminKey}},
	})
	require.NoError(t, err)
	return res
}

// renderValues renders the chart as `helm install sluice -n sluice` with
// vals.
func renderValues(vals map[string]any) (rendered, error) {
	ch, err := loader.LoadDir("../helm/sluice")
	if err != nil {
		return nil, err
	}
	rv, err := chartutil.ToRenderValues(ch, vals,
		chartutil.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := appsv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	dec := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	res := rendered{}
	for name, text := range out {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for _, doc := range strings.Split(text, "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			obj, gvk, err := dec.Decode([]byte(doc), nil, nil)
			if err != nil {
				continue // kinds this test does not run (RBAC)
			}
			res[gvk.Kind+"/"+obj.(metav1.Object).GetName()] = obj
		}
	}
	return res, nil
}

// proc runs one binary; its output goes to dir/name.log.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	err  error
	done chan struct{}
}

func start(t *testing.T, dir, name string, args []string, env map[string]string) *proc {
	t.Helper()
	p := startProc(dir, name, args, env)
	require.NoError(t, p.err, "start %s %q", name, args)
	t.Cleanup(p.stop)
	return p
}

// startProc starts a binary of binDir; p.err says whether it started.
func startProc(dir, name string, args []string, env map[string]string) *proc {
	logPath := filepath.Join(dir, name+".log")
	p := &proc{name: name, log: logPath, done: make(chan struct{})}
	f, err := os.Create(logPath)
	if err != nil {
		p.err = err
		close(p.done)
		return p
	}
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = f, f
	p.cmd = cmd
	if p.err = cmd.Start(); p.err != nil {
		_ = f.Close()
		close(p.done)
		return p
	}
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p
}

// stop interrupts the process and waits up to 30 s, then kills it.
func (p *proc) stop() {
	if p.cmd == nil || p.err != nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// containerEnv resolves a container's environment as the kubelet would:
// literal values, Secret keys from the rendered Secret, downward-API fields
// from pod, then applies overrides.
func containerEnv(t *testing.T, c corev1.Container, secrets map[string]map[string]string, pod map[string]string, overrides map[string]string) map[string]string {
	t.Helper()
	env, err := containerEnvErr(c, secrets, pod, overrides)
	require.NoError(t, err)
	return env
}

func containerEnvErr(c corev1.Container, secrets map[string]map[string]string, pod map[string]string, overrides map[string]string) (map[string]string, error) {
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secrets[ref.Name][ref.Key]
			if !ok {
				return nil, fmt.Errorf("%s: Secret %s key %s not rendered", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		case e.ValueFrom.FieldRef != nil:
			v, ok := pod[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				return nil, fmt.Errorf("%s: field %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			env[e.Name] = v
		case e.ValueFrom.ResourceFieldRef != nil:
			q := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(e.ValueFrom.ResourceFieldRef.Resource, "limits."))]
			env[e.Name] = fmt.Sprint(q.Value())
		}
	}
	for k, v := range overrides {
		if _, known := env[k]; !known {
			return nil, fmt.Errorf("override of %s, which the chart does not set", k)
		}
		env[k] = v
	}
	return env, nil
}

// replaceArg swaps the value of --name=VALUE (asserting the chart sets it).
func replaceArg(t *testing.T, args []string, name, value string) []string {
	t.Helper()
	out, err := replaceArgErr(args, name, value)
	require.NoError(t, err)
	return out
}

func replaceArgErr(args []string, name, value string) ([]string, error) {
	out := append([]string(nil), args...)
	for i, a := range out {
		if strings.HasPrefix(a, "--"+name+"=") {
			out[i] = "--" + name + "=" + value
			return out, nil
		}
	}
	return nil, fmt.Errorf("the chart does not pass --%s (args %q)", name, args)
}

func waitHTTP(t *testing.T, p *proc, url string) {
	t.Helper()
	require.NoError(t, p.waitHTTP(url))
}

// waitHTTP waits up to 2 minutes for url to answer 200.
func (p *proc) waitHTTP(url string) error {
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited:\n%s", p.name, p.tail())
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s never answered %s:\n%s", p.name, url, p.tail())
		}
	}
}

func TestChartWiring(t *testing.T) {
	absDir, err := testenv.EnvtestAssets()
	if err != nil {
		testenv.SkipOrFail(t, "%v", err)
	}
	buildBinaries(t)

	env := &envtest.Environment{
		BinaryAssetsDirectory: absDir, CRDDirectoryPaths: []string{"../crds"}, ErrorIfCRDPathMissing: true,
		ControlPlaneStartTimeout: 2 * time.Minute, ControlPlaneStopTimeout: time.Minute,
	}
	cfg, err := env.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	k8s, err := client.New(cfg, client.Options{})
	require.NoError(t, err)
	ctx := context.Background()

	work := t.TempDir()
	objs := render(t)

	// The release's Secret, created for real: the controller reads it.
	secretObj, ok := objs["Secret/sluice-admin-key"].(*corev1.Secret)
	require.True(t, ok, "admin key Secret rendered")
	secrets := map[string]map[string]string{secretObj.Name: secretObj.StringData}
	require.NoError(t, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}))
	require.NoError(t, k8s.Create(ctx, secretObj.DeepCopy()))

	// sluice-server with the StatefulSet's args and env.
	sts := objs["StatefulSet/sluice-server"].(*appsv1.StatefulSet)
	sc := sts.Spec.Template.Spec.Containers[0]
	serverAddr := freeAddr(t)
	serverArgs := replaceArg(t, sc.Args, "listen", serverAddr)
	serverArgs = replaceArg(t, serverArgs, "data-dir", filepath.Join(work, "data"))
	server := start(t, work, "sluice-server", serverArgs, containerEnv(t, sc, secrets, nil, map[string]string{"TMPDIR": work}))
	waitHTTP(t, server, "http://"+serverAddr+sc.ReadinessProbe.HTTPGet.Path)

	// sluice-controller with the Deployment's args, against envtest.
	dep := objs["Deployment/sluice-controller"].(*appsv1.Deployment)
	cc := dep.Spec.Template.Spec.Containers[0]
	kubeconfig := filepath.Join(work, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, env.KubeConfig, 0o600))
	probeAddr := freeAddr(t)
	ctlArgs := replaceArg(t, cc.Args, "server-dial-address", serverAddr)
	ctlArgs = replaceArg(t, ctlArgs, "health-probe-bind-address", probeAddr)
	ctlArgs = replaceArg(t, ctlArgs, "metrics-bind-address", "0")
	ctl := start(t, work, "sluice-controller", ctlArgs, map[string]string{"KUBECONFIG": kubeconfig})
	waitHTTP(t, ctl, "http://"+probeAddr+cc.ReadinessProbe.HTTPGet.Path)

	// An AliyunLogConfig with no machineGroups: the default group, which the
	// DaemonSet's agents are in.
	logDir := filepath.Join(work, "node", "var", "log", "app")
	require.NoError(t, os.MkdirAll(logDir, 0o755))
	cr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "log.alibabacloud.com/v1alpha1", "kind": "AliyunLogConfig",
		"metadata": map[string]any{"name": "app-files", "namespace": "default"},
		"spec": map[string]any{
			"logstore": "app-files",
			"logtailConfig": map[string]any{
				"configName": "app-files", "inputType": "file",
				"inputDetail": map[string]any{
					"logType": "common_reg_log", "logPath": logDir, "filePattern": "*.log",
					"logBeginRegex": ".*", "regex": "(.*)", "key": []any{"content"},
				},
			},
		},
	}}
	require.NoError(t, k8s.Create(ctx, cr))
	eventually(t, time.Minute, func() bool {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(cr.GroupVersionKind())
		if k8s.Get(ctx, client.ObjectKeyFromObject(cr), got) != nil {
			return false
		}
		s, _, _ := unstructured.NestedString(got.Object, "status", "status")
		return s == "OK"
	}, func() string { return "AliyunLogConfig never OK\ncontroller:\n" + ctl.tail() })

	// sluice-agent with the DaemonSet's args and env; the node's paths
	// under work/node.
	ds := objs["DaemonSet/sluice-agent"].(*appsv1.DaemonSet)
	ac := ds.Spec.Template.Spec.Containers[0]
	agentHTTP := freeAddr(t)
	agentArgs := replaceArg(t, ac.Args, "config-server", "http://"+serverAddr)
	agentArgs = replaceArg(t, agentArgs, "http-listen", agentHTTP)
	state := filepath.Join(work, "node", "var", "lib", "sluice-agent")
	require.NoError(t, os.MkdirAll(state, 0o755))
	agentEnv := containerEnv(t, ac, secrets, map[string]string{"spec.nodeName": "node-1", "status.hostIP": "10.0.0.7"},
		map[string]string{
			"config_server_address":    "http://" + serverAddr,
			"SLUICE_ALLOWED_LOG_ROOTS": filepath.Join(work, "node", "var", "log"),
		})
	for k, v := range agentEnv {
		if strings.HasPrefix(v, "/var/lib/sluice-agent/") {
			agentEnv[k] = filepath.Join(state, strings.TrimPrefix(v, "/var/lib/sluice-agent/"))
		}
	}
	agent := start(t, work, "sluice-agent", agentArgs, agentEnv)

	// The chart's liveness command, run as the kubelet would.
	probe := append([]string(nil), ac.LivenessProbe.Exec.Command...)
	require.Equal(t, "/sluice-agent", probe[0])
	probe = replaceArg(t, probe, "addr", agentHTTP)
	var probeOut []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		probeOut, err = exec.Command(filepath.Join(binDir, "sluice-agent"), probe[1:]...).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("liveness probe %q never passed: %v %s\nagent:\n%s", probe, err, probeOut, agent.tail())
		}
	}

	// Lines written on the "node" must be queryable in the server.
	const n = 100 // one GetLogs page: offset paging is not stable under equal __time__
	g, err := mocklog.New(mocklog.Options{LogType: mocklog.LogTypeNginx, Path: filepath.Join(logDir, "access.log"), TotalCount: n, FirstSeq: 1})
	require.NoError(t, err)
	require.NoError(t, g.Run(ctx))

	endpoint, _ := strings.CutPrefix(strings.TrimPrefix(valueOf(cc.Args, "server-endpoint"), "http://"), "https://")
	q, err := controller.NewSLSClient(controller.SLSOptions{
		Endpoint: "http://" + endpoint, DialAddress: serverAddr,
		Credentials: sls.NewStaticCredentialsProvider(adminID, adminKey, ""),
	})
	require.NoError(t, err)
	project := controller.DefaultProject(clusterID)
	fetch := func() ([]map[string]string, error) {
		resp, err := q.GetLogs(project, "app-files", "", 0, time.Now().Add(time.Hour).Unix(), "*", 100, 0, false)
		if err != nil {
			return nil, err
		}
		return resp.Logs, nil
	}
	var logs []map[string]string
	eventually(t, time.Minute, func() bool {
		logs, err = fetch()
		return err == nil && len(logs) >= n
	}, func() string {
		return fmt.Sprintf("%d of %d lines arrived (%v)\nagent:\n%s", len(logs), n, err, agent.tail())
	})
	tr := &mocklog.SeqTracker{}
	for _, l := range logs {
		tr.AddLine([]byte(l["content"]))
		// Node tags from the downward API, identity of the DaemonSet.
		require.Equal(t, "node-1", l["__tag__:_node_name_"], "%v", l)
		require.Equal(t, "10.0.0.7", l["__tag__:_node_ip_"], "%v", l)
		require.Equal(t, "k8s-group-"+clusterID, l["__tag__:__user_defined_id__"], "%v", l)
	}
	assert.Empty(t, tr.Missing(1, n), "lost lines")
	assert.Zero(t, tr.Duplicates(), "lines twice")
	assert.Len(t, logs, n)
	// Nothing beyond the page either.
	resp, err := q.GetLogs(project, "app-files", "", 0, time.Now().Add(time.Hour).Unix(), "* | select count(*) as n", 10, 0, false)
	require.NoError(t, err)
	require.Len(t, resp.Logs, 1)
	assert.Equal(t, fmt.Sprint(n), resp.Logs[0]["n"])
}

// eventually polls cond until it holds or timeout passes, then fails with
// msg(), computed at that moment (process logs then hold the cause).
func eventually(t *testing.T, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
	}
}

func valueOf(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}
