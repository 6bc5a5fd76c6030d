package deploy

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/sluicelog/sluice/logconfig"
)

func TestChartLint(t *testing.T) {
	l := lint.All(chartDir, nil, testNamespace, false)
	for _, m := range l.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		} else {
			t.Logf("helm lint: %s", m)
		}
	}
}

func TestChartCRDIsTheControllersCRD(t *testing.T) {
	want, err := os.ReadFile(crdFile)
	require.NoError(t, err)
	got, err := os.ReadFile(chartDir + "/" + crdFile)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got),
		"helm/sluice/crds is a copy of deploy/crds: cp %s %s/%s", crdFile, chartDir, crdFile)
}

func TestChartDefaults(t *testing.T) {
	objs := chartObjects(t, nil)
	for _, want := range []struct{ kind, name string }{
		{"CustomResourceDefinition", "aliyunlogconfigs.log.alibabacloud.com"},
		{"Secret", "sluice-admin-key"},
		{"Service", "sluice-server"},
		{"StatefulSet", "sluice-server"},
		{"Deployment", "sluice-controller"},
		{"ClusterRole", "sluice-controller"},
		{"Role", "sluice-controller-local"},
		{"DaemonSet", "sluice-agent"},
		{"ClusterRole", "sluice-agent"},
		{"ServiceAccount", "sluice-agent"},
	} {
		require.NotNil(t, find(objs, want.kind, want.name), "%s %s not rendered", want.kind, want.name)
	}
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" && o.GetKind() != "ClusterRole" && o.GetKind() != "ClusterRoleBinding" {
			assert.Equal(t, testNamespace, o.GetNamespace(), "%s/%s namespace", o.GetKind(), o.GetName())
		}
	}

	t.Run("server", func(t *testing.T) {
		sts := find(objs, "StatefulSet", "sluice-server")
		spec := podSpec(t, sts)
		c := spec.Containers[0]
		base, ok := flagValue(c.Args, "base-domain")
		require.True(t, ok)
		assert.Equal(t, "sluice-server.sluice.svc", base)
		for _, env := range []string{"SLUICE_ADMIN_KEY_ID", "SLUICE_ADMIN_KEY_SECRET"} {
			e, ok := envValue(c, env)
			require.True(t, ok, env)
			require.NotNil(t, e.ValueFrom.SecretKeyRef, env)
			assert.Equal(t, "sluice-admin-key", e.ValueFrom.SecretKeyRef.Name)
		}
		assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
		assert.Equal(t, "/healthz", c.ReadinessProbe.HTTPGet.Path)
		claims, _, _ := unstructured.NestedSlice(sts.Object, "spec", "volumeClaimTemplates")
		require.Len(t, claims, 1, "the data directory is on a PVC by default")
		dir, _ := flagValue(c.Args, "data-dir")
		assert.Contains(t, mountPaths(c), dir)

		sec := find(objs, "Secret", "sluice-admin-key")
		data, _, _ := unstructured.NestedStringMap(sec.Object, "stringData")
		assert.Len(t, data["accessKeySecret"], 32, "a generated admin secret")
		assert.NotEmpty(t, data["accessKeyId"])
	})

	t.Run("controller", func(t *testing.T) {
		c := podSpec(t, find(objs, "Deployment", "sluice-controller")).Containers[0]
		ep, _ := flagValue(c.Args, "server-endpoint")
		assert.Equal(t, "http://sluice-server.sluice.svc:8080", ep, "the server's --base-domain must be the endpoint host")
		dial, _ := flagValue(c.Args, "server-dial-address")
		assert.Equal(t, "sluice-server.sluice.svc:8080", dial, "{project}.<host> does not resolve in the cluster")
		id, _ := flagValue(c.Args, "cluster-id")
		assert.Equal(t, "default", id)
		sec, _ := flagValue(c.Args, "credentials-secret")
		assert.Equal(t, "sluice/sluice-admin-key", sec)

		rules := roleRules(t, find(objs, "ClusterRole", "sluice-controller"))
		assert.True(t, allows(rules, "log.alibabacloud.com", "aliyunlogconfigs", "watch", ""))
		assert.True(t, allows(rules, "log.alibabacloud.com", "aliyunlogconfigs/status", "update", ""))
		assert.True(t, allows(rules, "events.k8s.io", "events", "create", ""))
		local := roleRules(t, find(objs, "Role", "sluice-controller-local"))
		assert.True(t, allows(local, "coordination.k8s.io", "leases", "update", ""))
		assert.True(t, allows(local, "", "secrets", "get", "sluice-admin-key"))
		assert.False(t, allows(local, "", "secrets", "get", "another-secret"), "only its credentials Secret")
		assert.False(t, allows(append(rules, local...), "", "secrets", "list", ""), "never list Secrets")
	})

	t.Run("agent", func(t *testing.T) {
		ds := find(objs, "DaemonSet", "sluice-agent")
		spec := podSpec(t, ds)
		cs := agentContainers(spec)
		require.Len(t, cs, 1)
		c := cs[0]
		e, _ := envValue(c, logconfig.EnvUserDefinedID)
		assert.Equal(t, "k8s-group-default", e.Value, "agents join the controller's default machine group")
		for name, field := range map[string]string{"NODE_NAME": "spec.nodeName", "NODE_IP": "status.hostIP"} {
			e, ok := envValue(c, name)
			require.True(t, ok, name)
			require.NotNil(t, e.ValueFrom.FieldRef, name)
			assert.Equal(t, field, e.ValueFrom.FieldRef.FieldPath)
		}
		srv, _ := flagValue(c.Args, "config-server")
		assert.Equal(t, "http://sluice-server.sluice.svc:8080", srv)
		out, _ := flagValue(c.Args, "output")
		assert.Equal(t, "sls", out)

		// The node's root read-only at /logtail_host, as Logtail mounts it,
		// and allowed to server configs.
		hostPathOf := map[string]string{}
		for _, v := range spec.Volumes {
			if v.HostPath != nil {
				hostPathOf[v.Name] = v.HostPath.Path
			}
		}
		var hostRoot *corev1.VolumeMount
		for i, m := range c.VolumeMounts {
			if m.MountPath == "/logtail_host" {
				hostRoot = &c.VolumeMounts[i]
			}
		}
		require.NotNil(t, hostRoot, "host root mounted at /logtail_host")
		assert.Equal(t, "/", hostPathOf[hostRoot.Name])
		assert.True(t, hostRoot.ReadOnly, "host root read-only")
		require.NotNil(t, hostRoot.MountPropagation)
		assert.Equal(t, corev1.MountPropagationHostToContainer, *hostRoot.MountPropagation, "new pods' volumes show up")
		roots, _ := envValue(c, "SLUICE_ALLOWED_LOG_ROOTS")
		assert.Contains(t, strings.Split(roots.Value, ","), "/logtail_host", "guide 002's /logtail_host/home/logs/app_log/ is allowed")
		podLogs := false
		for _, m := range c.VolumeMounts {
			if hostPathOf[m.Name] == "/var/log/pods" && m.MountPath == "/var/log/pods" {
				podLogs = m.ReadOnly
			}
		}
		assert.True(t, podLogs, "/var/log/pods read-only at the container input's default root")

		require.NotNil(t, c.LivenessProbe.Exec)
		assert.Equal(t, []string{"/sluice-agent", "status", "--addr=127.0.0.1:7953"}, c.LivenessProbe.Exec.Command)
		listen, _ := flagValue(c.Args, "http-listen")
		assert.True(t, strings.HasSuffix(listen, ":7953"))

		// Checkpoints on the node, not in the container.
		cp, _ := envValue(c, "check_point_filename")
		assert.True(t, strings.HasPrefix(cp.Value, "/var/lib/sluice-agent/"))
		assert.Contains(t, mountPaths(c), "/var/lib/sluice-agent")

		// The instance config the agent builds from this environment is valid
		// and sends to the server.
		in, err := logconfig.LoadInstance("", instanceEnv(c))
		require.NoError(t, err)
		assert.Equal(t, []string{"http://sluice-server.sluice.svc:8080"}, in.Endpoints())
		assert.Equal(t, []string{"k8s-group-default"}, in.UserDefinedIDs)

		rules := roleRules(t, find(objs, "ClusterRole", "sluice-agent"))
		assert.True(t, allows(rules, "", "pods", "watch", ""))
		assert.True(t, allows(rules, "", "pods", "list", ""))
		assert.False(t, allows(rules, "", "pods", "update", ""), "read-only")
		assert.True(t, allows(rules, "", "configmaps", "get", ""), "env from ConfigMaps, for selection")
		assert.False(t, allows(rules, "", "secrets", "get", ""), "no Secrets")
	})
}

func TestChartValues(t *testing.T) {
	t.Run("cluster id and extra identities", func(t *testing.T) {
		objs := chartObjects(t, map[string]any{
			"clusterId": "prod-eu",
			"agent":     map[string]any{"extraUserDefinedIds": []any{"nginx-nodes"}},
		})
		c := agentContainers(podSpec(t, find(objs, "DaemonSet", "sluice-agent")))[0]
		e, _ := envValue(c, logconfig.EnvUserDefinedID)
		assert.Equal(t, "k8s-group-prod-eu,nginx-nodes", e.Value)
		cc := podSpec(t, find(objs, "Deployment", "sluice-controller")).Containers[0]
		id, _ := flagValue(cc.Args, "cluster-id")
		assert.Equal(t, "prod-eu", id)
	})
	t.Run("invalid cluster id is refused", func(t *testing.T) {
		_, err := renderChart(t, map[string]any{"clusterId": "Prod_EU"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "clusterId")
	})
	t.Run("values.schema.json refuses typos and wrong types", func(t *testing.T) {
		for _, bad := range []map[string]any{
			{"agent": map[string]any{"stopDelay": 10}},                     // misspelt stopDelaySeconds
			{"agnet": map[string]any{"enabled": false}},                    // misspelt section
			{"agent": map[string]any{"stopDelaySeconds": "10s"}},           // seconds, not a duration
			{"agent": map[string]any{"hostPaths": []any{"var/log"}}},       // relative path
			{"image": map[string]any{"tag": 1.2}},                          // unquoted tag
			{"server": map[string]any{"logLevel": "verbose"}},              // no such level
			{"agent": map[string]any{"extraUserDefinedIds": []any{"a b"}}}, // identities are single words
		} {
			_, err := renderChart(t, bad)
			assert.Error(t, err, "%v accepted", bad)
		}
		_, err := renderChart(t, map[string]any{"agent": map[string]any{"extraEnv": []any{map[string]any{"name": "max_bytes_per_sec", "value": "1000000"}}}})
		assert.NoError(t, err)
	})
	t.Run("host root narrowed", func(t *testing.T) {
		objs := chartObjects(t, map[string]any{"agent": map[string]any{"hostRoot": map[string]any{"enabled": false}}})
		spec := podSpec(t, find(objs, "DaemonSet", "sluice-agent"))
		c := agentContainers(spec)[0]
		hostPathOf := map[string]string{}
		for _, v := range spec.Volumes {
			if v.HostPath != nil {
				hostPathOf[v.Name] = v.HostPath.Path
			}
		}
		mounted := map[string]bool{}
		for _, m := range c.VolumeMounts {
			hp, ok := hostPathOf[m.Name]
			require.NotEqual(t, "/", hp, "no host root")
			if ok && strings.HasPrefix(m.MountPath, "/logtail_host/") {
				assert.Equal(t, "/logtail_host"+hp, m.MountPath)
				assert.True(t, m.ReadOnly, "%s must be read-only", m.MountPath)
				mounted[hp] = true
			}
		}
		assert.True(t, mounted["/var/log"], "/var/log (pod logs) mounted")
		assert.True(t, mounted["/var/lib/kubelet/pods"], "/var/lib/kubelet/pods (pod volumes) mounted")
		roots, _ := envValue(c, "SLUICE_ALLOWED_LOG_ROOTS")
		assert.NotContains(t, strings.Split(roots.Value, ","), "/logtail_host")

		objs = chartObjects(t, map[string]any{"agent": map[string]any{"hostRoot": map[string]any{"allowAll": false}}})
		c = agentContainers(podSpec(t, find(objs, "DaemonSet", "sluice-agent")))[0]
		roots, _ = envValue(c, "SLUICE_ALLOWED_LOG_ROOTS")
		assert.Equal(t, "/var/log,/logtail_host/var/log,/logtail_host/var/lib/kubelet/pods,/logtail_host/var/lib/docker/containers", roots.Value)
	})
	t.Run("watch one namespace", func(t *testing.T) {
		objs := chartObjects(t, map[string]any{"controller": map[string]any{"watchNamespace": "apps"}})
		assert.Nil(t, find(objs, "ClusterRole", "sluice-controller"))
		role := find(objs, "Role", "sluice-controller")
		require.NotNil(t, role)
		assert.Equal(t, "apps", role.GetNamespace())
		c := podSpec(t, find(objs, "Deployment", "sluice-controller")).Containers[0]
		ns, _ := flagValue(c.Args, "namespace")
		assert.Equal(t, "apps", ns)
	})
	t.Run("metrics token", func(t *testing.T) {
		objs := chartObjects(t, nil)
		c := podSpec(t, find(objs, "StatefulSet", "sluice-server")).Containers[0]
		e, ok := envValue(c, "SLUICE_METRICS_TOKEN")
		require.True(t, ok, "the server requires a token on /metrics by default")
		require.Equal(t, "metricsToken", e.ValueFrom.SecretKeyRef.Key)
		sec := find(objs, "Secret", e.ValueFrom.SecretKeyRef.Name)
		require.NotNil(t, sec)
		tok, _, _ := unstructured.NestedString(sec.Object, "stringData", "metricsToken")
		require.Len(t, tok, 32)
		objs = chartObjects(t, map[string]any{"server": map[string]any{"metrics": map[string]any{"requireToken": false}}})
		c = podSpec(t, find(objs, "StatefulSet", "sluice-server")).Containers[0]
		_, ok = envValue(c, "SLUICE_METRICS_TOKEN")
		require.False(t, ok)
	})
	t.Run("existing admin secret", func(t *testing.T) {
		objs := chartObjects(t, map[string]any{"server": map[string]any{"adminKey": map[string]any{"existingSecret": "my-admin"}}})
		assert.Nil(t, find(objs, "Secret", ""), "no Secret created")
		c := podSpec(t, find(objs, "StatefulSet", "sluice-server")).Containers[0]
		e, _ := envValue(c, "SLUICE_ADMIN_KEY_SECRET")
		assert.Equal(t, "my-admin", e.ValueFrom.SecretKeyRef.Name)
		ac := agentContainers(podSpec(t, find(objs, "DaemonSet", "sluice-agent")))[0]
		e, _ = envValue(ac, "access_key_secret")
		assert.Equal(t, "my-admin", e.ValueFrom.SecretKeyRef.Name)
	})
	t.Run("external server needs an endpoint and credentials", func(t *testing.T) {
		_, err := renderChart(t, map[string]any{"server": map[string]any{"enabled": false}})
		require.Error(t, err)
		objs := chartObjects(t, map[string]any{
			"server":         map[string]any{"enabled": false},
			"externalServer": map[string]any{"endpoint": "https://logs.example.com"},
			"controller":     map[string]any{"credentialsSecret": "ctl-key"},
			"agent":          map[string]any{"credentialsSecret": "agent-key"},
		})
		assert.Nil(t, find(objs, "StatefulSet", ""))
		c := agentContainers(podSpec(t, find(objs, "DaemonSet", "sluice-agent")))[0]
		srv, _ := flagValue(c.Args, "config-server")
		assert.Equal(t, "https://logs.example.com", srv)
		cc := podSpec(t, find(objs, "Deployment", "sluice-controller")).Containers[0]
		assert.False(t, hasFlag(cc.Args, "server-dial-address"))
	})
	t.Run("ephemeral server", func(t *testing.T) {
		objs := chartObjects(t, map[string]any{"server": map[string]any{"persistence": map[string]any{"enabled": false}}})
		sts := find(objs, "StatefulSet", "sluice-server")
		_, found, _ := unstructured.NestedSlice(sts.Object, "spec", "volumeClaimTemplates")
		assert.False(t, found)
		var data *corev1.Volume
		for _, v := range podSpec(t, sts).Volumes {
			if v.Name == "data" {
				data = &v
			}
		}
		require.NotNil(t, data)
		assert.NotNil(t, data.EmptyDir)
	})
}

func TestChartNotes(t *testing.T) {
	out, err := renderChart(t, nil)
	require.NoError(t, err)
	notes := out["templates/NOTES.txt"]
	assert.Contains(t, notes, "port-forward svc/sluice-server 8080:8080")
	assert.Contains(t, notes, "/console")
	assert.Contains(t, notes, "secret sluice-admin-key")
	assert.Contains(t, notes, "sluice-server query")
	assert.Contains(t, notes, "k8s-group-default")
}

// TestValuesDocumented: every key of values.yaml carries a comment, except
// inside free-form Kubernetes fields (resources, tolerations…) and flow maps.
func TestValuesDocumented(t *testing.T) {
	data, err := os.ReadFile(chartDir + "/values.yaml")
	require.NoError(t, err)
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(data, &doc))
	freeForm := map[string]bool{"resources": true, "updateStrategy": true}
	var keys []string // leaves and free-form fields
	var walk func(path string, n *yaml.Node)
	walk = func(path string, n *yaml.Node) {
		if n.Kind != yaml.MappingNode || n.Style&yaml.FlowStyle != 0 {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := strings.TrimPrefix(path+"."+k.Value, ".")
			if k.HeadComment == "" && k.LineComment == "" {
				t.Errorf("values.yaml: %s has no comment", p)
			}
			if freeForm[k.Value] || v.Kind != yaml.MappingNode || len(v.Content) == 0 {
				keys = append(keys, p)
			} else {
				walk(p, v)
			}
		}
	}
	require.NotEmpty(t, doc.Content)
	walk("", doc.Content[0])

	require.Greater(t, len(keys), 40)
	// And docs/kubernetes.md names every key.
	docs, err := os.ReadFile("../docs/kubernetes.md")
	require.NoError(t, err)
	for _, p := range keys {
		assert.Contains(t, string(docs), "`"+p+"`", "docs/kubernetes.md does not document the value %s", p)
	}
}

func mountPaths(c corev1.Container) []string {
	var out []string
	for _, m := range c.VolumeMounts {
		out = append(out, m.MountPath)
	}
	return out
}

func roleRules(t *testing.T, o *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	require.NotNil(t, o)
	var r rbacv1.ClusterRole
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &r))
	return r.Rules
}

// allows reports whether rules grant verb on group/resource (resourceName
// "" = any object of the resource, i.e. a rule without resourceNames).
func allows(rules []rbacv1.PolicyRule, group, resource, verb, name string) bool {
	in := func(list []string, s string) bool {
		for _, x := range list {
			if x == s || x == "*" {
				return true
			}
		}
		return false
	}
	for _, r := range rules {
		if !in(r.APIGroups, group) || !in(r.Resources, resource) || !in(r.Verbs, verb) {
			continue
		}
		if len(r.ResourceNames) == 0 || (name != "" && in(r.ResourceNames, name)) {
			return true
		}
	}
	return false
}
