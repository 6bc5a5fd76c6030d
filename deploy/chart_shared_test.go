package deploy

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// server.replicas with PostgreSQL and object storage from existing
// Secrets: several pods with the shared-storage flags and credentials
// from the Secrets; refused without shared storage.
func TestChartServerReplicas(t *testing.T) {
	shared := map[string]any{"server": map[string]any{
		"replicas": 3,
		"postgres": map[string]any{"existingSecret": "sluice-pg"},
		"objectStorage": map[string]any{"url": "s3://logs/prod", "endpoint": "http://seaweedfs-s3.storage:8333",
			"existingSecret": "sluice-s3", "cacheSize": "20GiB", "commitInterval": "300ms", "resendWindow": "30m"},
	}}
	objs := chartObjects(t, shared)
	sts := find(objs, "StatefulSet", "sluice-server")
	require.NotNil(t, sts)
	n, _, _ := unstructured.NestedFieldNoCopy(sts.Object, "spec", "replicas")
	assert.Equal(t, "3", fmt.Sprint(n))
	policy, _, _ := unstructured.NestedString(sts.Object, "spec", "podManagementPolicy")
	assert.Equal(t, "Parallel", policy, "pods start and stop independently")
	c := podSpec(t, sts).Containers[0]
	for flag, want := range map[string]string{"storage": "s3://logs/prod", "s3-endpoint": "http://seaweedfs-s3.storage:8333",
		"cache-size": "20GiB", "commit-interval": "300ms", "resend-window": "30m"} {
		got, ok := flagValue(c.Args, flag)
		assert.True(t, ok, "--%s missing", flag)
		assert.Equal(t, want, got, "--%s", flag)
	}
	assert.False(t, hasFlag(c.Args, "durability"), "no WAL durability with shared storage")
	e, ok := envValue(c, "SLUICE_META")
	require.True(t, ok)
	assert.Equal(t, "sluice-pg", e.ValueFrom.SecretKeyRef.Name)
	assert.Equal(t, "url", e.ValueFrom.SecretKeyRef.Key)
	for env, key := range map[string]string{"SLUICE_S3_ACCESS_KEY_ID": "accessKeyId", "SLUICE_S3_SECRET_ACCESS_KEY": "secretAccessKey"} {
		e, ok := envValue(c, env)
		require.True(t, ok, env)
		assert.Equal(t, "sluice-s3", e.ValueFrom.SecretKeyRef.Name)
		assert.Equal(t, key, e.ValueFrom.SecretKeyRef.Key)
	}
	e, ok = envValue(c, "SLUICE_NODE")
	require.True(t, ok)
	assert.Equal(t, "metadata.name", e.ValueFrom.FieldRef.FieldPath, "each pod is a node named after itself")

	// Defaults are one pod on its data directory.
	c = podSpec(t, find(chartObjects(t, nil), "StatefulSet", "sluice-server")).Containers[0]
	assert.False(t, hasFlag(c.Args, "storage"))
	_, ok = envValue(c, "SLUICE_META")
	assert.False(t, ok)

	for _, bad := range []map[string]any{
		{"server": map[string]any{"replicas": 2}},                                                                                             // one data directory, one pod
		{"server": map[string]any{"objectStorage": map[string]any{"url": "s3://logs/p"}}},                                                     // no PostgreSQL
		{"server": map[string]any{"objectStorage": map[string]any{"url": "gs://logs/p"}, "postgres": map[string]any{"existingSecret": "pg"}}}, // not S3
		{"server": map[string]any{"replicas": 0}},
	} {
		_, err := renderChart(t, bad)
		assert.Error(t, err, "%v accepted", bad)
	}
}
