// Package deploy holds the Helm chart (helm/sluice) and the example
// manifests (examples/) — no Go code. Its tests render the chart with
// Helm's own Go packages (the helm binary is not needed), check what a user
// would notice (identities, mounts, probes, credentials, configs the agent
// accepts), and apply every object to a real kube-apiserver (envtest) with
// server-side apply in dry-run mode, so a manifest the API server would
// reject fails CI.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/sluicelog/sluice/logconfig"
)

const (
	chartDir      = "helm/sluice"
	examplesDir   = "examples"
	crdFile       = "crds/log.alibabacloud.com_aliyunlogconfigs.yaml"
	testRelease   = "sluice"
	testNamespace = "sluice"
	// The Kubernetes version the chart is rendered for: the envtest one.
	testKubeVersion = "v1.32.13"
)

// renderChart renders the chart as `helm template sluice helm/sluice -n sluice`
// with values overrides would, and returns the manifests by template name
// (NOTES.txt included, helpers and empty output left out).
func renderChart(t testing.TB, overrides map[string]any) (map[string]string, error) {
	t.Helper()
	ch := loadChart(t)
	kv, err := chartutil.ParseKubeVersion(testKubeVersion)
	require.NoError(t, err)
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	if ch.Metadata.KubeVersion != "" && !chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, testKubeVersion) {
		return nil, fmt.Errorf("chart kubeVersion %q excludes %s", ch.Metadata.KubeVersion, testKubeVersion)
	}
	vals, err := chartutil.ToRenderValues(ch, overrides, chartutil.ReleaseOptions{
		Name: testRelease, Namespace: testNamespace, Revision: 1, IsInstall: true,
	}, caps)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	res := map[string]string{}
	for name, text := range out {
		if strings.TrimSpace(text) == "" || strings.HasSuffix(name, ".tpl") {
			continue
		}
		res[strings.TrimPrefix(name, ch.Name()+"/")] = text
	}
	return res, nil
}

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	ch, err := loader.LoadDir(chartDir)
	require.NoError(t, err, "load chart %s", chartDir)
	return ch
}

// chartObjects renders the chart and decodes every object, CRDs first.
func chartObjects(t testing.TB, overrides map[string]any) []*unstructured.Unstructured {
	t.Helper()
	out, err := renderChart(t, overrides)
	require.NoError(t, err)
	var objs []*unstructured.Unstructured
	for _, crd := range loadChart(t).CRDObjects() {
		objs = append(objs, decodeObjects(t, crd.Filename, crd.File.Data)...)
	}
	names := make([]string, 0, len(out))
	for name := range out {
		if !strings.HasSuffix(name, "NOTES.txt") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		objs = append(objs, decodeObjects(t, name, []byte(out[name]))...)
	}
	return objs
}

// decodeObjects splits a multi-document YAML stream into objects; each is
// annotated with where it came from for error messages.
func decodeObjects(t testing.TB, source string, data []byte) []*unstructured.Unstructured {
	t.Helper()
	objs, err := decodeStream(source, data)
	require.NoError(t, err)
	return objs
}

func decodeStream(source string, data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for i := 0; ; i++ {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("%s: document %d has no kind/apiVersion", source, i)
		}
		objs = append(objs, u)
	}
}

// exampleFiles lists every manifest under examples/.
func exampleFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	require.NoError(t, filepath.WalkDir(examplesDir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	}))
	require.NotEmpty(t, files)
	sort.Strings(files)
	return files
}

func exampleObjects(t testing.TB, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return decodeObjects(t, path, data)
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			return o
		}
	}
	return nil
}

// podTemplate returns the pod spec of a workload (Deployment, StatefulSet,
// DaemonSet, Job) or of a Pod, typed.
func podSpec(t testing.TB, o *unstructured.Unstructured) *corev1.PodSpec {
	t.Helper()
	path := []string{"spec", "template", "spec"}
	if o.GetKind() == "Pod" {
		path = []string{"spec"}
	}
	m, ok, err := unstructured.NestedMap(o.Object, path...)
	require.NoError(t, err)
	if !ok {
		return nil
	}
	var spec corev1.PodSpec
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(m, &spec), "%s/%s pod spec", o.GetKind(), o.GetName())
	return &spec
}

func isWorkload(o *unstructured.Unstructured) bool {
	switch o.GetKind() {
	case "Deployment", "StatefulSet", "DaemonSet", "Job", "Pod":
		return true
	}
	return false
}

// agentContainers returns the sluice-agent containers of a pod spec,
// native sidecars (init containers) included.
func agentContainers(spec *corev1.PodSpec) []corev1.Container {
	var out []corev1.Container
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range list {
			if strings.Contains(c.Image, "sluice-agent") {
				out = append(out, c)
			}
		}
	}
	return out
}

func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--"+name || strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}

func envValue(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// instanceEnv is what the agent would see in its environment: literal
// values as written, downward-API and Secret references as a placeholder
// (their values exist only in a running pod).
func instanceEnv(c corev1.Container) func(string) string {
	return func(name string) string {
		e, ok := envValue(c, name)
		switch {
		case !ok:
			return ""
		case e.ValueFrom != nil:
			return "from-" + name
		default:
			return e.Value
		}
	}
}

// checkCollectionConfig parses, defaults and validates one Logtail
// collection config as the agent and the server do.
func checkCollectionConfig(data []byte) (*logconfig.Config, error) {
	c, err := logconfig.Parse(data)
	if err != nil {
		return nil, err
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// crConfig builds the collection config sluice-controller would create from
// an AliyunLogConfig: logtailConfig plus the output the controller fills in.
func crConfig(t testing.TB, o *unstructured.Unstructured) []byte {
	t.Helper()
	lc, ok, err := unstructured.NestedMap(o.Object, "spec", "logtailConfig")
	require.NoError(t, err)
	require.True(t, ok, "%s has no spec.logtailConfig", o.GetName())
	project, _, _ := unstructured.NestedString(o.Object, "spec", "project")
	if project == "" {
		project = "k8s-log-test"
	}
	logstore, _, _ := unstructured.NestedString(o.Object, "spec", "logstore")
	cfg := map[string]any{}
	for k, v := range lc {
		cfg[k] = v
	}
	cfg["outputType"] = logconfig.OutputTypeLogService
	cfg["outputDetail"] = map[string]any{"projectName": project, "logstoreName": logstore}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	return b
}
