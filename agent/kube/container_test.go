package kube

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func cmRef(name string, optional bool) *corev1.ConfigMapEnvSource {
	return &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Optional: &optional}
}

func cmKey(name, key string, optional bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
}

// envPod has one container whose env exercises the kubelet's order and
// optional semantics.
func envPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app",
			EnvFrom: []corev1.EnvFromSource{
				{ConfigMapRef: cmRef("base", false), Prefix: "CFG_"},
				{ConfigMapRef: cmRef("base", false)},
				{ConfigMapRef: cmRef("later", false)}, // later envFrom sources win over earlier ones
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}},
				{ConfigMapRef: cmRef("absent", true)},
			},
			Env: []corev1.EnvVar{
				{Name: "MODE", Value: "literal"},                        // overrides envFrom
				{Name: "TIER", ValueFrom: cmKey("base", "TEAM", false)}, // valueFrom overrides too
				{Name: "LEVEL", ValueFrom: cmKey("base", "NOPE", true)}, // optional, key missing: envFrom value stays
				{Name: "OPT", ValueFrom: cmKey("absent", "X", true)},
				{Name: "REQ", ValueFrom: cmKey("gone", "X", false)},
				{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "pw"}}},
			},
		}}},
	}
}

func TestContainerEnvFromConfigMaps(t *testing.T) {
	data := map[string]map[string]string{
		"base":  {"LEVEL": "debug", "TEAM": "payments", "MODE": "a", "ZONE": "eu"},
		"later": {"ZONE": "us"},
	}
	var asked []string
	lookup := func(name string) (map[string]string, bool) {
		asked = append(asked, name)
		d, ok := data[name]
		return d, ok
	}
	cs, missing := ContainersWithConfigMaps(envPod(), lookup)
	require.Len(t, cs, 1)
	require.Equal(t, map[string]string{
		"CFG_LEVEL": "debug", "CFG_TEAM": "payments", "CFG_MODE": "a", "CFG_ZONE": "eu",
		"LEVEL": "debug", "TEAM": "payments", "MODE": "literal", "ZONE": "us", "TIER": "payments",
	}, cs[0].Env)
	require.Equal(t, []string{"gone"}, missing, "only non-optional references that could not be resolved")
	require.NotContains(t, asked, "s", "secrets are never asked for")

	// Without a lookup: what the pod object alone says.
	cs = ContainersOf(envPod())
	require.Equal(t, map[string]string{"MODE": "literal"}, cs[0].Env)
	require.True(t, RefersToConfigMaps(envPod()))
	require.False(t, RefersToConfigMaps(testPod("ns", "p", "n")))

	// Ephemeral containers take envFrom too.
	p := &corev1.Pod{Spec: corev1.PodSpec{EphemeralContainers: []corev1.EphemeralContainer{{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug",
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: cmRef("later", false)}}}}}}}
	require.True(t, RefersToConfigMaps(p))
	cs, missing = ContainersWithConfigMaps(p, lookup)
	require.Empty(t, missing)
	require.Equal(t, map[string]string{"ZONE": "us"}, cs[0].Env)
}
