package controller

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/sluicelog/sluice/controller/api/v1alpha1"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// loadSeed decodes testdata/<name> as a user would write it.
func loadSeed(t *testing.T, name string) *v1alpha1.AliyunLogConfig {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	obj := &v1alpha1.AliyunLogConfig{}
	require.NoError(t, yaml.UnmarshalStrict(raw, obj), "seed %s must decode into the Go types without unknown fields", name)
	return obj
}
