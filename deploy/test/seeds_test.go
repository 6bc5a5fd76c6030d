package test

// One test per guide the project is built from (the manifests are the
// project's copies in seeds/):
// the guide's objects are applied to a real kube-apiserver with the chart's
// sluice-server and sluice-controller running, the agent containers run as
// the manifest runs them (pods_test.go), and the test asserts what the guide
// promises its reader: the lines arrive, tagged as the guide says, the
// liveness probe passes, and the agent keeps collecting for the stop delay.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicelog/sluice/controller"
	"github.com/sluicelog/sluice/mocklog"
)

// runWorkload runs the pods of a Deployment or Job as a node would, at most
// limit of them: the harness's pods share the host's network namespace, so
// two agents would contend for the status port (127.0.0.1:7953) that on a
// node sits in each pod's own network namespace.
func (c *seedCluster) runWorkload(t *testing.T, ns string, u *unstructured.Unstructured, limit int) []*pod {
	t.Helper()
	spec, n := podSpecOf(t, u)
	n = min(n, limit)
	var pods []*pod
	for i := range n {
		name := fmt.Sprintf("%s-%d", u.GetName(), i)
		pods = append(pods, c.kube.run(podEnv{
			name: name, namespace: ns, uid: fmt.Sprintf("uid-%s-%d", u.GetName(), i),
			ip: fmt.Sprintf("10.1.0.%d", 10+i), nodeName: "node-a", nodeIP: "192.168.0.10",
		}, spec))
	}
	return pods
}

func workload(t *testing.T, objs []*unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "Deployment" || o.GetKind() == "Job" {
			return o
		}
	}
	t.Fatal("no workload in the manifest")
	return nil
}

// agentContainer is the manifest's Logtail container.
func agentContainer(t *testing.T, spec corev1.PodSpec) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if imageName(c.Image) == agentImage {
			return c
		}
	}
	t.Fatal("no agent container")
	return corev1.Container{}
}

// stopDelay stops p and checks the agent container stays up for the stop
// delay the manifest configures (want), then exits 0.
func stopDelay(t *testing.T, p *pod, agent string, want time.Duration) {
	t.Helper()
	start := time.Now()
	p.stop(want + 20*time.Second)
	ctr := p.containers[agent]
	took := time.Since(start)
	require.GreaterOrEqual(t, took, want, "the agent stopped before the guide's stop delay:\n%s", p.tail(agent))
	require.Zero(t, ctr.code, "agent exit code after SIGTERM:\n%s", p.tail(agent))
	require.Contains(t, p.tail(agent), "stop_delay="+want.String(), "the supervisor names the delay it keeps")
}

func field(l map[string]string, k string) string { return l[k] }

// TestSeed000ServerlessSidecar: guide 000, a Deployment of 2 serverless pods
// with a Logtail sidecar that has no command (the image's default runs),
// ALIYUN_LOGTAIL_CONFIG naming a file the image does not have, the
// aliyun_logs_machinegroup identity and the pod-stdlog volume. The user
// makes the configs in the console (a machine group with the user-defined
// id; a file config for /var/log/nginx, one for the stdout files).
func TestSeed000ServerlessSidecar(t *testing.T) {
	c := startSeedCluster(t)
	const ns, project = "seed000", "seed000-eci"
	c.agentKey(t, ns, project)
	// Step 5 of the guide: the machine group by user-defined identity;
	// the file config goes to the aliyun_logs_machinegroup group.
	c.consoleConfig(t, project, "nginx-access", "k8s-group-app-alpine", `{"configName":"seed000-nginx-file","inputType":"file",
	  "inputDetail":{"logType":"common_reg_log","logPath":"/var/log/nginx","filePattern":"access.log","dockerFile":false,
	    "regex":"(\\S+)\\s(\\S+)\\s.*","key":["remote_addr","dash"],"logBeginRegex":".*"},
	  "outputType":"LogService","outputDetail":{"projectName":"seed000-eci","logstoreName":"nginx-access"}}`)
	// "标准输出的配置方式类似": the stdout files of the pod-stdlog volume.
	c.consoleConfig(t, project, "nginx-stdout", "nginx-log-sidecar", `{"configName":"seed000-nginx-stdout","inputType":"file",
	  "inputDetail":{"logType":"common_reg_log","logPath":"/stdlog","filePattern":"*.log","maxDepth":3,"dockerFile":false,
	    "regex":"(\\S+)\\s(stdout|stderr)\\s[FP]\\s(.*)","key":["_time_","_source_","content"],"logBeginRegex":".*"},
	  "outputType":"LogService","outputDetail":{"projectName":"seed000-eci","logstoreName":"nginx-stdout"}}`)

	objs := manifest(t, "000-serverless-sidecar.yaml")
	c.apply(t, ns, objs...)
	w := workload(t, objs)
	_, replicas := podSpecOf(t, w)
	require.Equal(t, 2, replicas, "the guide's replicas")
	pods := c.runWorkload(t, ns, w, 1)
	why := func() string { return pods[0].tail("logtail") + "\nserver:\n" + c.server.tail() }

	// The pod's files arrive, tagged with the pod's host name (the guide's
	// last step: "ip and hostname as in the console").
	var got []map[string]string
	for _, p := range pods {
		got = c.logs(t, project, "nginx-access", "__tag__:__hostname__: "+p.env.name, 90*time.Second, func(ls []map[string]string) bool {
			return len(ls) > 0 && field(ls[0], "__tag__:__hostname__") == p.env.name
		}, why)
	}
	l := got[0]
	require.Equal(t, "/var/log/nginx/access.log", field(l, "__tag__:__path__"), "%v", l)
	require.NotEmpty(t, field(l, "remote_addr"), "the config's regex ran: %v", l)
	require.NotEmpty(t, field(l, "__source__"), "%v", l)

	// Stdout (mock_log --stderr=true) through the stdlog volume.
	got = c.logs(t, project, "nginx-stdout", "*", 90*time.Second, func(ls []map[string]string) bool { return len(ls) >= 10 }, why)
	require.Equal(t, "stderr", field(got[0], "_source_"), "%v", got[0])
	require.NotEmpty(t, field(got[0], "content"), "%v", got[0])

	// The environment's notices: the missing config file and the
	// account id are explained, the machine group is used.
	tail := pods[0].tail("logtail")
	require.Contains(t, tail, "does not exist: settings come from the environment")
	require.Contains(t, tail, "machine group k8s-group-app-alpine")
	require.Contains(t, tail, "account id 1234567890123456 is not used")

	// The image's default is run_logtail.sh's supervision: 10 s of stop delay.
	stopDelay(t, pods[0], "logtail", 10*time.Second)
}

// TestSeed004SidecarJob: guide 004, a Job with the Logtail sidecar (no
// command: the image's default) probed by /etc/init.d/ilogtaild status,
// ALIYUN_LOG_ENV_TAGS naming five downward-API variables, and two
// AliyunLogConfig resources: the access one as printed (10 keys for 11
// groups) is refused with a status saying so; fixed as docs/kubernetes.md
// says, it collects; the error one is accepted.
func TestSeed004SidecarJob(t *testing.T) {
	c := startSeedCluster(t)
	const ns, project = "seed004", "k8s-nginx-sidecar-demo"
	c.agentKey(t, ns, project)

	printed := manifest(t, "004-access-cr-as-printed.yaml")
	require.Len(t, printed, 1)
	c.apply(t, ns, printed[0])
	status, msg := c.crStatus(t, ns, printed[0].GetName())
	require.NotEqual(t, "OK", status, "the guide's access CR has 10 keys for 11 groups: %s", msg)
	require.Contains(t, msg, "11", "the status names the group count: %s", msg)

	fixed := fixedAccessCR(t, printed[0])
	c.apply(t, ns, fixed)
	errCR := manifest(t, "004-error-cr.yaml")
	c.apply(t, ns, errCR...)
	for _, name := range []string{fixed.GetName(), errCR[0].GetName()} {
		status, msg := c.crStatus(t, ns, name)
		require.Equal(t, "OK", status, "%s: %s\ncontroller:\n%s", name, msg, c.ctl.tail())
	}

	runSidecarJob(t, c, ns, project, "004-sidecar-job.yaml")
}

// runSidecarJob runs the Job of guides 001 and 004 (nginx with the Logtail
// sidecar, machine group nginx-log-sidecar) and checks what both promise:
// the liveness probe passes, the access lines arrive parsed by the CR's
// regex with the ALIYUN_LOG_ENV_TAGS tags, and the sidecar stops 10 s after
// SIGTERM (run_logtail.sh 10).
func runSidecarJob(t *testing.T, c *seedCluster, ns, project, file string) {
	t.Helper()
	objs := manifest(t, file)
	c.apply(t, ns, objs...)
	w := workload(t, objs)
	spec, _ := podSpecOf(t, w)
	pods := c.runWorkload(t, ns, w, 1)
	p := pods[0]
	why := func() string { return p.tail("logtail") + "\nserver:\n" + c.server.tail() }

	// The guide's liveness probe, as printed.
	ag := agentContainer(t, spec)
	out := p.probe("logtail", ag.LivenessProbe, 60*time.Second)
	require.Contains(t, out, "running")

	got := c.logs(t, project, "nginx-access", "__tag__:_namespace_: "+ns, 90*time.Second, func(ls []map[string]string) bool { return len(ls) >= 20 }, why)
	l := got[0]
	// ALIYUN_LOG_ENV_TAGS: each named variable is a tag with its value.
	require.Equal(t, p.env.name, field(l, "__tag__:_pod_name_"), "%v", l)
	require.Equal(t, p.env.ip, field(l, "__tag__:_pod_ip_"), "%v", l)
	require.Equal(t, ns, field(l, "__tag__:_namespace_"), "%v", l)
	require.Equal(t, p.env.nodeName, field(l, "__tag__:_node_name_"), "%v", l)
	require.Equal(t, p.env.nodeIP, field(l, "__tag__:_node_ip_"), "%v", l)
	require.NotEmpty(t, field(l, "method"), "the CR's regex parsed the line: %v", l)
	require.NotEmpty(t, field(l, "http_user_agent"), "%v", l)

	// run_logtail.sh 10 (001's command, 004's image default): 10 s of stop delay.
	stopDelay(t, p, "logtail", 10*time.Second)
}

// TestSeed002DaemonSet: guide 002, the DaemonSet install. The chart's
// DaemonSet pod runs as the kubelet would (its args, env, probe and
// hostPath volumes, the node's root being a directory of the test), and the
// guide's host-file example, as a CR for the chart's default project and
// machine group, collects a file of the node's /home/logs/app_log/ through
// /logtail_host; a container stdout CR collects an application pod's
// stdout from the node's /var/log/pods with its pod metadata as tags. The pod's service-account token is replaced by a
// kubeconfig for envtest (KUBECONFIG), the one change the harness makes.
func TestSeed002DaemonSet(t *testing.T) {
	c := startSeedCluster(t)
	const ns = namespace // the chart's release namespace
	crs := append(manifest(t, "002-host-file-cr.yaml"), manifest(t, "002-stdout-cr.yaml")...)
	require.Len(t, crs, 2)
	c.apply(t, "default", crs...)
	for _, cr := range crs {
		status, msg := c.crStatus(t, "default", cr.GetName())
		require.Equal(t, "OK", status, "%s: %s\ncontroller:\n%s", cr.GetName(), msg, c.ctl.tail())
	}

	ds := c.objs["DaemonSet/sluice-agent"].(*appsv1.DaemonSet)
	spec := *ds.Spec.Template.Spec.DeepCopy()
	ag := &spec.Containers[0]
	for _, e := range ag.Env {
		if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
			sec := c.objs["Secret/"+r.SecretKeyRef.Name].(*corev1.Secret)
			c.kube.secrets[ns+"/"+sec.Name] = sec.StringData
		}
	}
	kubeconfig, err := os.ReadFile(filepath.Join(c.work, "kubeconfig"))
	require.NoError(t, err)
	kdir := filepath.Join(c.kube.hostRoot, "seed002-kube")
	require.NoError(t, os.MkdirAll(kdir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(kdir, "config"), kubeconfig, 0o600))
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "kube-api", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/seed002-kube"}}})
	ag.VolumeMounts = append(ag.VolumeMounts, corev1.VolumeMount{Name: "kube-api", MountPath: "/var/run/seed002-kube", ReadOnly: true})
	ag.Env = append(ag.Env, corev1.EnvVar{Name: "KUBECONFIG", Value: "/var/run/seed002-kube/config"})

	// The node's file, written before the agent starts and after.
	logDir := filepath.Join(c.kube.hostRoot, "home", "logs", "app_log")
	require.NoError(t, os.MkdirAll(logDir, 0o755))
	const n = 100
	g, err := mocklog.New(mocklog.Options{LogType: mocklog.LogTypeNginx, Path: filepath.Join(logDir, "app.log"), TotalCount: n / 2, FirstSeq: 1})
	require.NoError(t, err)
	require.NoError(t, g.Run(context.Background()))

	// An application pod on the node (in the API server: the agent watches
	// its node's pods) and its stdout as the kubelet's runtime keeps it.
	app := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx-log-demo-0", Namespace: "seed002", Labels: map[string]string{"app": "nginx-log-demo"}},
		Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "nginx-log-demo", Image: "ghcr.io/sluicelog/mocklog:0.1.0"}}},
	}
	ensureNamespace(t, c.k8s, app.Namespace)
	require.NoError(t, c.k8s.Create(context.Background(), app))
	t.Cleanup(func() { _ = c.k8s.Delete(context.Background(), app, client.GracePeriodSeconds(0)) })
	stdout := newCRIWriter(t, filepath.Join(c.kube.hostRoot, "var", "log", "pods",
		app.Namespace+"_"+app.Name+"_"+string(app.UID), "nginx-log-demo", "0.log"), io.Discard)
	t.Cleanup(stdout.Close)
	writeStdout := func(from, to int) {
		for i := from; i <= to; i++ {
			_, err := fmt.Fprintf(stdout, "seed002 stdout line %03d\n", i)
			require.NoError(t, err)
		}
	}
	writeStdout(1, n/2)

	p := c.kube.run(podEnv{name: "sluice-agent-node-a", namespace: ns, uid: "uid-sluice-agent-node-a",
		ip: "192.168.0.10", nodeName: "node-a", nodeIP: "192.168.0.10"}, spec)
	why := func() string { return p.tail(ag.Name) + "\nserver:\n" + c.server.tail() }
	// The chart's liveness probe passes; `sluice-agent status` lists the
	// CR's config once the server delivered it.
	out := p.probe(ag.Name, ag.LivenessProbe, 90*time.Second)
	for deadline := time.Now().Add(90 * time.Second); !strings.Contains(out, "seed002-host-app-log"); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("the CR's config never ran in the agent:\n%s\n%s", out, why())
		}
		out, _ = p.exec(ag.Name, ag.LivenessProbe.Exec.Command...)
	}

	g, err = mocklog.New(mocklog.Options{LogType: mocklog.LogTypeNginx, Path: filepath.Join(logDir, "app.log"), TotalCount: n / 2, FirstSeq: n/2 + 1})
	require.NoError(t, err)
	require.NoError(t, g.Run(context.Background()))

	project := controller.DefaultProject(seedClusterID)
	got := c.logs(t, project, "app-log", "*", 2*time.Minute, func(ls []map[string]string) bool { return len(ls) >= n }, why)
	tr := &mocklog.SeqTracker{}
	for _, l := range got {
		tr.AddLine([]byte(l["content"]))
		require.Equal(t, "/logtail_host/home/logs/app_log/app.log", field(l, "__tag__:__path__"), "%v", l)
		require.Equal(t, "node-a", field(l, "__tag__:_node_name_"), "%v", l)
		require.Equal(t, "k8s-group-"+seedClusterID, field(l, "__tag__:__user_defined_id__"), "%v", l)
	}
	require.Empty(t, tr.Missing(1, n), "lost lines")
	require.Zero(t, tr.Duplicates(), "lines twice")

	// The pod's stdout, with its Kubernetes metadata.
	writeStdout(n/2+1, n)
	got = c.logs(t, project, "stdout", "*", 2*time.Minute, func(ls []map[string]string) bool { return len(ls) >= n }, why)
	seen := map[string]int{}
	for _, l := range got {
		seen[field(l, "content")]++
		// Fields, as Logtail's service_docker_stdout adds them.
		require.Equal(t, app.Name, field(l, "_pod_name_"), "%v", l)
		require.Equal(t, app.Namespace, field(l, "_namespace_"), "%v", l)
		require.Equal(t, "nginx-log-demo", field(l, "_container_name_"), "%v", l)
		require.Equal(t, "stderr", field(l, "_source_"), "%v", l)
	}
	for i := 1; i <= n; i++ {
		require.Equal(t, 1, seen[fmt.Sprintf("seed002 stdout line %03d", i)], "stdout line %d (of %d distinct)", i, len(seen))
	}
}

// fixedAccessCR is the guides' access CR fixed as docs/kubernetes.md says: a
// key per group. The guide's regex fits its generator (docker-log-test's own
// line layout); mocklog writes nginx's combined format plus $request_time,
// so the fixed CR uses the regex and keys mocklog documents
// (mocklog.NginxRegex), as a user adapts the regex to their own nginx
// log_format.
func fixedAccessCR(t *testing.T, printed *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	fixed := printed.DeepCopy()
	fixed.SetName("nginx-log-access-fixed")
	require.NoError(t, unstructured.SetNestedField(fixed.Object, "nginx-log-access-fixed", "spec", "logtailConfig", "configName"))
	require.NoError(t, unstructured.SetNestedField(fixed.Object, ".*", "spec", "logtailConfig", "inputDetail", "logBeginRegex"))
	require.NoError(t, unstructured.SetNestedField(fixed.Object, mocklog.NginxRegex, "spec", "logtailConfig", "inputDetail", "regex"))
	require.NoError(t, unstructured.SetNestedStringSlice(fixed.Object, mocklog.NginxKeys(), "spec", "logtailConfig", "inputDetail", "key"))
	return fixed
}

// TestSeed001SidecarJob: guide 001, the same nginx Job with a Logtail
// sidecar started as `sh -c "/usr/local/ilogtail/run_logtail.sh 10"`, and
// its two AliyunLogConfig resources printed with no `---` between them.
// What a user sees, in order: the file applies as ONE resource (the YAML
// decoder kubectl's file reader uses takes the second CR's keys over the
// first's), so only the error config exists and the access log is not
// collected; with the `---` added, the access CR is refused with a status
// naming its 10 keys for 11 groups; with the keys fixed, it collects.
func TestSeed001SidecarJob(t *testing.T) {
	c := startSeedCluster(t)
	const ns, project = "seed001", "k8s-nginx-sidecar-demo"
	c.agentKey(t, ns, project)

	data, err := os.ReadFile(filepath.Join("seeds", "001-crs-as-printed.yaml"))
	require.NoError(t, err)
	printed := decodeManifest(t, "001-crs-as-printed.yaml", data)
	require.Len(t, printed, 1, "two CRs with no `---` read as one mapping")
	require.Equal(t, "nginx-log-error-example", printed[0].GetName(), "the second CR's keys replace the first's")
	c.apply(t, ns, printed[0])
	status, msg := c.crStatus(t, ns, printed[0].GetName())
	require.Equal(t, "OK", status, msg)
	_, err = c.admin.GetConfig(project, "nginx-log-access-example")
	require.Error(t, err, "the access CR as printed never reaches the server")

	// The first fix docs/kubernetes.md gives: `---` before the second CR.
	i := strings.Index(string(data), "# config for error log")
	require.Positive(t, i)
	split := decodeManifest(t, "001 with ---", []byte(string(data[:i])+"---\n"+string(data[i:])))
	require.Len(t, split, 2)
	access := split[0]
	require.Equal(t, "nginx-log-access-example", access.GetName())
	keys, _, _ := unstructured.NestedStringSlice(access.Object, "spec", "logtailConfig", "inputDetail", "key")
	require.Len(t, keys, 10, "the guide's key list as printed: %q", keys)
	c.apply(t, ns, access)
	status, msg = c.crStatus(t, ns, access.GetName())
	require.NotEqual(t, "OK", status, "10 keys for 11 groups: %s", msg)
	require.Contains(t, msg, "10 names", "the status names the defect: %s", msg)
	require.Contains(t, msg, "11 capture groups", "the status names the defect: %s", msg)

	// The second fix: a key per group.
	fixed := fixedAccessCR(t, access)
	c.apply(t, ns, fixed)
	status, msg = c.crStatus(t, ns, fixed.GetName())
	require.Equal(t, "OK", status, "%s\ncontroller:\n%s", msg, c.ctl.tail())

	runSidecarJob(t, c, ns, project, "001-sidecar-job.yaml")
}

// count runs `query | select count(*) as n` against a logstore.
func (c *seedCluster) count(t *testing.T, project, logstore, query string) int {
	t.Helper()
	resp, err := c.admin.GetLogs(project, logstore, "", 0, time.Now().Add(time.Hour).Unix(), query+" | select count(*) as n", 10, 0, false)
	require.NoError(t, err)
	require.Len(t, resp.Logs, 1, "%s", query)
	n, err := strconv.Atoi(resp.Logs[0]["n"])
	require.NoError(t, err, "%v", resp.Logs[0])
	return n
}

// TestSeed003SharedPVC: guide 003, the light shared-PVC mode. Application
// pods write to the PVC under subPathExpr directories named
// namespace_pod_podIP_nodeIP_node; ONE Logtail Deployment mounts the PVC's
// parent directory at /var/log/nginx and keeps its checkpoint and buffer on
// the PVC (check_point_filename, buffer_file_path …). The user makes the
// machine group and a file config for /var/log/nginx in the console, then
// (step 6) sets the topic to the path regex. The test checks every line
// arrives with the pod's namespace, name, IPs and node as tags and the
// groups joined as __topic__, and that the agent, moved to another node,
// resumes from the PVC's checkpoint: no line collected before the move is
// sent again.
func TestSeed003SharedPVC(t *testing.T) {
	c := startSeedCluster(t)
	const ns, project, logstore, group = "seed003", "seed003-nas", "nginx-nas", "logtail-state-machinegroup"
	c.agentKey(t, ns, project)
	// Step 6's regex as the page shows it; the page's source escapes the
	// first group's '*' ('.\*?'), which matches nothing (a status warning,
	// see agent/supervisor's TestTopicRegexThatMatchesNothingIsAStatusWarning).
	const topic = `\/var\/log\/(?P<app>.*?)\/(?P<namespace>[^_]+?)_(?P<podname>[^_]+?)_(?P<podip>[\d\.]+?)_(?P<nodeip>[\d\.]+?)_(?P<nodename>[^_]+?)\/access.log`
	cfg, err := json.Marshal(map[string]any{"configName": "seed003-nas", "inputType": "file",
		"inputDetail": map[string]any{"logType": "common_reg_log", "logPath": "/var/log/nginx", "filePattern": "access.log",
			"maxDepth": 10, "dockerFile": false, "logBeginRegex": ".*", "topicFormat": topic},
		"outputType": "LogService", "outputDetail": map[string]any{"projectName": project, "logstoreName": logstore}})
	require.NoError(t, err)
	c.consoleConfig(t, project, logstore, group, string(cfg))

	objs := manifest(t, "003-shared-pvc.yaml")
	c.apply(t, ns, objs...)
	var app, agent *unstructured.Unstructured
	for _, o := range objs {
		switch o.GetName() {
		case "mock-nginx-test":
			app = o
		case "logtail-state-pod":
			agent = o
		}
	}
	require.NotNil(t, app)
	require.NotNil(t, agent)
	_, replicas := podSpecOf(t, app)
	require.Equal(t, 4, replicas, "the guide's replicas")
	apps := c.runWorkload(t, ns, app, 2)
	agentSpec, agents := podSpecOf(t, agent)
	require.Equal(t, 1, agents, "one agent for the volume")
	a := c.kube.run(podEnv{name: "logtail-state-pod-a", namespace: ns, uid: "uid-logtail-a",
		ip: "10.1.0.50", nodeName: "node-a", nodeIP: "192.168.0.10"}, agentSpec)
	why := func() string { return a.tail("logtail-state-pod") + "\nserver:\n" + c.server.tail() }

	for _, p := range apps {
		q := "__tag__:podname: " + p.env.name
		got := c.logs(t, project, logstore, q, 90*time.Second, func(ls []map[string]string) bool { return len(ls) >= 10 }, why)
		l := got[0]
		require.Equal(t, "nginx", field(l, "__tag__:app"), "%v", l)
		require.Equal(t, ns, field(l, "__tag__:namespace"), "%v", l)
		require.Equal(t, p.env.ip, field(l, "__tag__:podip"), "%v", l)
		require.Equal(t, p.env.nodeIP, field(l, "__tag__:nodeip"), "%v", l)
		require.Equal(t, p.env.nodeName, field(l, "__tag__:nodename"), "%v", l)
		require.Equal(t, strings.Join([]string{"nginx", ns, p.env.name, p.env.ip, p.env.nodeIP, p.env.nodeName}, "_"), field(l, "__topic__"), "%v", l)
		dir := strings.Join([]string{ns, p.env.name, p.env.ip, p.env.nodeIP, p.env.nodeName}, "_")
		require.Equal(t, "/var/log/nginx/"+dir+"/access.log", field(l, "__tag__:__path__"), "%v", l)
	}

	// The applications stop; every line of their files arrives.
	files := map[string]string{}
	for _, p := range apps {
		p.stop(20 * time.Second)
		ctr := p.containers["mock-nginx-test"]
		files[p.env.name] = p.hostPath(corev1.Container{VolumeMounts: p.spec.Containers[0].VolumeMounts}, ctr.env, "/var/log/nginx/access.log")
	}
	want := map[string]int{}
	for name, path := range files {
		want[name] = lines(t, path)
		require.Positive(t, want[name])
		q := "__tag__:podname: " + name
		deadline := time.Now().Add(2 * time.Minute)
		for c.count(t, project, logstore, q) < want[name] {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d lines arrived\n%s", name, c.count(t, project, logstore, q), want[name], why())
			}
			time.Sleep(time.Second)
		}
	}

	// The agent pod moves to node-b: stopped (the image's default stop
	// delay), started again elsewhere with the same PVC, which the kubelet
	// there mounts with another device id. Its checkpoint on the PVC says
	// what was sent; no flag (--ignore-device) is needed.
	a.stop(40 * time.Second)
	require.Zero(t, a.containers["logtail-state-pod"].code, "agent exit code:\n%s", a.tail("logtail-state-pod"))
	b := c.kube.run(podEnv{name: "logtail-state-pod-b", namespace: ns, uid: "uid-logtail-b",
		ip: "10.2.0.50", nodeName: "node-b", nodeIP: "192.168.0.11"}, agentSpec)
	why = func() string { return b.tail("logtail-state-pod") + "\nserver:\n" + c.server.tail() }
	// A line appended to each file after the move: once it arrives, the
	// file was read to its end by the moved agent, from its checkpoint.
	for name, path := range files {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = fmt.Fprintf(f, "aftermove %s\n", name)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	for name := range files {
		c.logs(t, project, logstore, "aftermove and __tag__:podname: "+name, 90*time.Second, func(ls []map[string]string) bool { return len(ls) == 1 }, why)
		require.Equal(t, want[name]+1, c.count(t, project, logstore, "__tag__:podname: "+name),
			"%s: the moved agent sent lines again (its checkpoint on the PVC was not used)\n%s", name, why())
	}
	out, err := os.ReadFile(b.containers["logtail-state-pod"].log)
	require.NoError(t, err)
	require.Contains(t, string(out), "logtail_check_point", "the agent names the checkpoint file the guide sets")
	require.Contains(t, string(out), "file known by its checkpoint under another device id",
		"on node-b the PVC has another device id (pods_test.go: remountedPVC)")
}
