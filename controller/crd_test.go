package controller

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluicelog/sluice/controller/api/v1alpha1"
	"github.com/sluicelog/sluice/logconfig"
)

const crdPath = "../deploy/crds/log.alibabacloud.com_aliyunlogconfigs.yaml"

func loadCRD(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	raw, err := os.ReadFile(crdPath)
	require.NoError(t, err)
	crd := &apiextensionsv1.CustomResourceDefinition{}
	require.NoError(t, yaml.UnmarshalStrict(raw, crd))
	return crd
}

// jsonFields lists the JSON names of a struct's fields (inline embeds and
// "-" skipped).
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func schemaFields(p apiextensionsv1.JSONSchemaProps) []string {
	var out []string
	for k := range p.Properties {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The hand-written CRD and the Go types must describe the same fields, or
// the API server would prune what the controller reads (or the reverse).
func TestCRDMatchesGoTypes(t *testing.T) {
	crd := loadCRD(t)
	require.Equal(t, v1alpha1.Resource+"."+v1alpha1.Group, crd.Name)
	require.Equal(t, v1alpha1.Group, crd.Spec.Group)
	require.Equal(t, v1alpha1.Kind, crd.Spec.Names.Kind)
	require.Len(t, crd.Spec.Versions, 1)
	v := crd.Spec.Versions[0]
	require.Equal(t, v1alpha1.Version, v.Name)
	require.NotNil(t, v.Subresources.Status, "status is a subresource: users cannot overwrite it with apply")

	root := v.Schema.OpenAPIV3Schema
	spec, status := root.Properties["spec"], root.Properties["status"]
	require.Equal(t, jsonFields(reflect.TypeFor[v1alpha1.AliyunLogConfigSpec]()), schemaFields(spec))
	require.Equal(t, jsonFields(reflect.TypeFor[v1alpha1.LogtailConfig]()), schemaFields(spec.Properties["logtailConfig"]))
	require.Equal(t, jsonFields(reflect.TypeFor[v1alpha1.AliyunLogConfigStatus]()), schemaFields(status))
	require.ElementsMatch(t, []string{"logstore", "logtailConfig"}, spec.Required)
}

// Every inputDetail key logconfig knows has a typed schema entry; unknown
// keys are still preserved (x-kubernetes-preserve-unknown-fields).
func TestCRDInputDetailCoversLogconfig(t *testing.T) {
	v := loadCRD(t).Spec.Versions[0]
	detail := v.Schema.OpenAPIV3Schema.Properties["spec"].Properties["logtailConfig"].Properties["inputDetail"]
	require.NotNil(t, detail.XPreserveUnknownFields)
	require.True(t, *detail.XPreserveUnknownFields)
	require.Equal(t, jsonFields(reflect.TypeFor[logconfig.InputDetail]()), schemaFields(detail))
	require.Equal(t, jsonFields(reflect.TypeFor[logconfig.Advanced]()), schemaFields(detail.Properties["advanced"]))
	require.Equal(t, jsonFields(reflect.TypeFor[logconfig.K8sSelector]()), schemaFields(detail.Properties["advanced"].Properties["k8s"]))
	require.Equal(t, jsonFields(reflect.TypeFor[logconfig.Blacklist]()), schemaFields(detail.Properties["advanced"].Properties["blacklist"]))
	require.Equal(t, jsonFields(reflect.TypeFor[logconfig.SensitiveKey]()), schemaFields(*detail.Properties["sensitive_keys"].Items.Schema))
	var logTypes []string
	for _, e := range detail.Properties["logType"].Enum {
		logTypes = append(logTypes, strings.Trim(string(e.Raw), `"`))
	}
	require.Equal(t, logconfig.LogTypes(), logTypes)
}

func TestDeepCopyIndependent(t *testing.T) {
	obj := loadSeed(t, "seed-sidecar-file.yaml")
	obj.Spec.ConfigTags = map[string]string{"a": "b"}
	obj.Status.MachineGroups = []string{"g"}
	cp := obj.DeepCopy()
	require.Equal(t, obj, cp)
	*cp.Spec.ShardCount = 9
	cp.Spec.MachineGroups[0] = "changed"
	cp.Spec.ConfigTags["a"] = "changed"
	cp.Spec.LogtailConfig.InputDetail.Raw[0] = ' '
	cp.Status.MachineGroups[0] = "changed"
	require.EqualValues(t, 3, *obj.Spec.ShardCount)
	require.Equal(t, "nginx-log-sidecar", obj.Spec.MachineGroups[0])
	require.Equal(t, "b", obj.Spec.ConfigTags["a"])
	require.Equal(t, byte('{'), obj.Spec.LogtailConfig.InputDetail.Raw[0])
	require.Equal(t, "g", obj.Status.MachineGroups[0])
}
