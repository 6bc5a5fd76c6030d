package deploy

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluicelog/sluice/logconfig"
)

// TestExampleAgentConfigs parses every collection config an example
// carries (ConfigMap *.json files, AliyunLogConfig logtailConfig) as the
// agent and the server do, and checks each agent container is wired to
// them: config directory mounted from a ConfigMap of the same file, a valid
// instance config from its environment, a liveness probe, and every
// ALIYUN_LOG_ENV_TAGS name defined.
func TestExampleAgentConfigs(t *testing.T) {
	for _, path := range exampleFiles(t) {
		t.Run(path, func(t *testing.T) {
			objs := exampleObjects(t, path)
			configs := 0
			configMaps := map[string]bool{}
			for _, o := range objs {
				switch o.GetKind() {
				case "ConfigMap":
					configMaps[o.GetName()] = true
					data, _, _ := unstructured.NestedStringMap(o.Object, "data")
					for key, text := range data {
						if !strings.HasSuffix(key, ".json") {
							continue
						}
						c, err := checkCollectionConfig([]byte(text))
						require.NoError(t, err, "ConfigMap %s key %s", o.GetName(), key)
						assert.NotEmpty(t, c.ConfigName)
						configs++
					}
				case "AliyunLogConfig":
					c, err := checkCollectionConfig(crConfig(t, o))
					require.NoError(t, err, "AliyunLogConfig %s", o.GetName())
					assert.Equal(t, o.GetName(), c.ConfigName, "logtailConfig.configName is the CR's name")
					configs++
				}
			}
			require.NotZero(t, configs, "every example carries at least one collection config")

			for _, o := range objs {
				if !isWorkload(o) {
					continue
				}
				spec := podSpec(t, o)
				for _, c := range agentContainers(spec) {
					checkAgentContainer(t, o.GetName(), spec, c, configMaps)
				}
			}
		})
	}
}

func checkAgentContainer(t *testing.T, workload string, spec *corev1.PodSpec, c corev1.Container, configMaps map[string]bool) {
	t.Helper()
	at := workload + "/" + c.Name
	if dir, ok := flagValue(c.Args, "config-dir"); ok {
		var vol string
		for _, m := range c.VolumeMounts {
			if m.MountPath == dir {
				vol = m.Name
			}
		}
		require.NotEmpty(t, vol, "%s: --config-dir %s is not a mounted volume", at, dir)
		for _, v := range spec.Volumes {
			if v.Name == vol {
				require.NotNil(t, v.ConfigMap, "%s: volume %s", at, vol)
				assert.True(t, configMaps[v.ConfigMap.Name], "%s: ConfigMap %s is not in the same file", at, v.ConfigMap.Name)
			}
		}
	}
	in, err := logconfig.LoadInstance("", instanceEnv(c))
	require.NoError(t, err, "%s: instance config from the environment", at)
	assert.NotEmpty(t, in.Endpoints(), "%s: no server endpoint", at)
	assert.NotEmpty(t, in.AccessKeyID, "%s: no access key", at)
	for _, name := range in.EnvTags {
		_, ok := envValue(c, name)
		assert.True(t, ok, "%s: ALIYUN_LOG_ENV_TAGS names %s but it is not set", at, name)
	}
	require.NotNil(t, c.LivenessProbe, "%s: liveness probe", at)
	require.NotNil(t, c.LivenessProbe.Exec, "%s: liveness probe", at)
	assert.Equal(t, []string{"/sluice-agent", "status"}, c.LivenessProbe.Exec.Command[:2])
	if d, ok := flagValue(c.Args, "stop-delay"); ok && spec.TerminationGracePeriodSeconds != nil {
		// The pod must outlive the stop delay, or the kubelet kills the
		// agent before the last lines are out.
		assert.Greater(t, *spec.TerminationGracePeriodSeconds, int64(mustSeconds(t, d)), "%s: terminationGracePeriodSeconds vs --stop-delay", at)
	}
}

func mustSeconds(t *testing.T, d string) int {
	t.Helper()
	v, err := time.ParseDuration(d)
	require.NoError(t, err, "stop delay %q", d)
	return int(v.Seconds())
}

func TestExampleNativeSidecarJob(t *testing.T) {
	objs := exampleObjects(t, examplesDir+"/sidecar/job-native-sidecar.yaml")
	job := find(objs, "Job", "")
	require.NotNil(t, job)
	spec := podSpec(t, job)
	for _, c := range spec.Containers {
		assert.NotContains(t, c.Image, "sluice-agent", "a classic sidecar never exits: the Job would never complete")
	}
	require.Len(t, spec.InitContainers, 1)
	agent := spec.InitContainers[0]
	assert.Contains(t, agent.Image, "sluice-agent")
	require.NotNil(t, agent.RestartPolicy)
	assert.Equal(t, corev1.ContainerRestartPolicyAlways, *agent.RestartPolicy, "native sidecar")
	assert.NotNil(t, agent.StartupProbe, "the app starts once the agent runs")
	// The job's work ends by itself.
	assert.True(t, hasFlag(spec.Containers[0].Args, "total-count"))
}

func TestExampleSharedPVC(t *testing.T) {
	objs := exampleObjects(t, examplesDir+"/shared-pvc/shared-pvc.yaml")
	app := podSpec(t, find(objs, "Deployment", "pvc-app"))
	var subPathExpr string
	for _, m := range app.Containers[0].VolumeMounts {
		if m.Name == "app-logs" {
			subPathExpr = m.SubPathExpr
		}
	}
	require.Equal(t, "app/$(POD_NAMESPACE)_$(POD_NAME)_$(POD_IP)_$(NODE_IP)_$(NODE_NAME)", subPathExpr)

	agentDep := find(objs, "Deployment", "sluice-agent-pvc")
	replicas, _, _ := unstructured.NestedFieldNoCopy(agentDep.Object, "spec", "replicas")
	assert.EqualValues(t, 1, replicas, "one agent per volume")
	strategy, _, _ := unstructured.NestedString(agentDep.Object, "spec", "strategy", "type")
	assert.Equal(t, "Recreate", strategy, "never two agents on one checkpoint, even during a rollout")
	spec := podSpec(t, agentDep)
	agent := agentContainers(spec)[0]
	assert.True(t, hasFlag(agent.Args, "ignore-device"), "the volume's device id changes when the agent moves")
	var pvcMount string
	for _, m := range agent.VolumeMounts {
		if m.Name == "app-logs" {
			pvcMount = m.MountPath
		}
	}
	cp, _ := envValue(agent, "check_point_filename")
	assert.True(t, strings.HasPrefix(cp.Value, pvcMount+"/"), "checkpoint %s on the shared volume %s", cp.Value, pvcMount)

	// The path an app pod writes to, as the agent sees it, turned into tags
	// by the config's topicFormat, as the agent's file input does.
	cm := find(objs, "ConfigMap", "pvc-agent-config")
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	c, err := checkCollectionConfig([]byte(data["pvc-access.json"]))
	require.NoError(t, err)
	env := map[string]string{"POD_NAMESPACE": "shop", "POD_NAME": "web-7d9f8-x2k4q", "POD_IP": "10.1.2.3",
		"NODE_IP": "192.168.0.7", "NODE_NAME": "cn-hz.node-1"}
	dir := regexp.MustCompile(`\$\((\w+)\)`).ReplaceAllStringFunc(subPathExpr, func(s string) string { return env[s[2:len(s)-1]] })
	path := pvcMount + "/" + dir + "/" + c.InputDetail.FilePattern
	assert.True(t, strings.HasPrefix(path, c.InputDetail.LogPath+"/"), "%s is under logPath %s", path, c.InputDetail.LogPath)
	re := regexp.MustCompile(`^(?:` + c.InputDetail.TopicFormat + `)$`)
	m := re.FindStringSubmatch(path)
	require.NotNil(t, m, "topicFormat does not match %s", path)
	tags := map[string]string{}
	for i, name := range re.SubexpNames() {
		if name != "" {
			tags[name] = m[i]
		}
	}
	assert.Equal(t, map[string]string{"app": "app", "namespace": "shop", "podname": "web-7d9f8-x2k4q",
		"podip": "10.1.2.3", "nodeip": "192.168.0.7", "nodename": "cn-hz.node-1"}, tags)
}
