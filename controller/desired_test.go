package controller

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/sluicelog/sluice/controller/api/v1alpha1"
	"github.com/sluicelog/sluice/logconfig"
)

func TestResolveSeedDefaults(t *testing.T) {
	d, err := resolve(loadSeed(t, "seed-stdout.yaml"), "c1")
	require.NoError(t, err)
	require.Equal(t, "k8s-log-c1", d.Project)
	require.Equal(t, []string{"k8s-group-c1"}, d.MachineGroups)
	require.Equal(t, "simple-stdout-example", d.ConfigName)
	require.Equal(t, logstoreSpec{Name: "k8s-stdout", ShardCount: 2, TTL: 90, AutoSplit: true, MaxSplitShard: 32}, d.Logstore)

	cfg, err := logconfig.Parse(d.Config)
	require.NoError(t, err)
	require.Equal(t, "plugin", cfg.InputType)
	require.Equal(t, "LogService", cfg.OutputType)
	require.Equal(t, "k8s-log-c1", cfg.OutputDetail.ProjectName)
	require.Equal(t, "k8s-stdout", cfg.OutputDetail.LogstoreName)
	require.NotNil(t, cfg.InputDetail.LocalStorage, "SDK defaults are filled")
	require.True(t, *cfg.InputDetail.LocalStorage)
	p, err := cfg.InputDetail.PluginPipeline()
	require.NoError(t, err)
	require.Len(t, p.Inputs, 1)
	require.Equal(t, "service_docker_stdout", p.Inputs[0].Type)

	d, err = resolve(loadSeed(t, "seed-sidecar-file.yaml"), "c1")
	require.NoError(t, err)
	require.Equal(t, "k8s-log-sidecar-demo", d.Project)
	require.Equal(t, []string{"nginx-log-sidecar"}, d.MachineGroups)
	require.Equal(t, 3, d.Logstore.ShardCount)
	require.Equal(t, 30, d.Logstore.TTL)
	cfg, err = logconfig.Parse(d.Config)
	require.NoError(t, err)
	require.False(t, *cfg.InputDetail.DiscardUnmatch, "explicit false survives defaults")
	require.Len(t, cfg.InputDetail.Key, 10)

	_, err = resolve(loadSeed(t, "seed-daemonset-file.yaml"), "c1")
	require.NoError(t, err)
}

func TestResolveConfigNameDefaultsToMetadataName(t *testing.T) {
	obj := loadSeed(t, "seed-stdout.yaml")
	obj.Spec.LogtailConfig.ConfigName = ""
	obj.Spec.MachineGroup = "legacy-group"
	obj.Spec.MachineGroups = []string{"a", "legacy-group", "a"}
	d, err := resolve(obj, "c1")
	require.NoError(t, err)
	require.Equal(t, "simple-stdout-example", d.ConfigName)
	require.Equal(t, []string{"a", "legacy-group"}, d.MachineGroups)
}

func TestResolveBadSpecNamesField(t *testing.T) {
	f := func(name string, mutate func(*v1alpha1.AliyunLogConfig), wantField string) {
		t.Run(name, func(t *testing.T) {
			obj := loadSeed(t, "seed-sidecar-file.yaml")
			mutate(obj)
			_, err := resolve(obj, "c1")
			require.Error(t, err)
			var errs specErrors
			require.ErrorAs(t, err, &errs)
			var fields []string
			for _, e := range errs {
				fields = append(fields, e.Field)
			}
			require.Contains(t, fields, wantField, "error %q", err)
		})
	}
	detail := func(obj *v1alpha1.AliyunLogConfig, key string, v any) {
		m := map[string]any{}
		require.NoError(t, json.Unmarshal(obj.Spec.LogtailConfig.InputDetail.Raw, &m))
		m[key] = v
		raw, err := json.Marshal(m)
		require.NoError(t, err)
		obj.Spec.LogtailConfig.InputDetail = &apiextensionsv1.JSON{Raw: raw}
	}
	f("bad regex", func(o *v1alpha1.AliyunLogConfig) { detail(o, "regex", "(unclosed") }, "spec.logtailConfig.inputDetail.regex")
	f("unknown logType", func(o *v1alpha1.AliyunLogConfig) { detail(o, "logType", "xml_log") }, "spec.logtailConfig.inputDetail.logType")
	f("wrong JSON type", func(o *v1alpha1.AliyunLogConfig) { detail(o, "maxDepth", "deep") }, "spec.logtailConfig.inputDetail.maxDepth")
	f("bad logstore", func(o *v1alpha1.AliyunLogConfig) { o.Spec.Logstore = "Bad Name" }, "spec.logstore")
	f("bad project", func(o *v1alpha1.AliyunLogConfig) { o.Spec.Project = "UPPER" }, "spec.project")
	f("too many shards", func(o *v1alpha1.AliyunLogConfig) { n := int32(11); o.Spec.ShardCount = &n }, "spec.shardCount")
	f("bad group", func(o *v1alpha1.AliyunLogConfig) { o.Spec.MachineGroups = []string{"has space"} }, "spec.machineGroups[0]")

	obj := loadSeed(t, "seed-stdout.yaml")
	_, err := resolve(obj, "Bad_Cluster")
	require.ErrorContains(t, err, "spec.project (default from --cluster-id)")
}

func TestSameConfigIgnoresServerFieldsAndOrder(t *testing.T) {
	d, err := resolve(loadSeed(t, "seed-sidecar-file.yaml"), "c1")
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(d.Config, &m))
	m["createTime"], m["lastModifyTime"] = 1700000000, 1700000001
	server, err := json.Marshal(m)
	require.NoError(t, err)
	same, err := sameConfig(string(server), d.Config)
	require.NoError(t, err)
	require.True(t, same)

	m["inputDetail"].(map[string]any)["filePattern"] = "error.log"
	changed, err := json.Marshal(m)
	require.NoError(t, err)
	same, err = sameConfig(string(changed), d.Config)
	require.NoError(t, err)
	require.False(t, same)
}
