package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// image is one target of images/Dockerfile.
type image struct {
	base       string
	entrypoint []string
}

func dockerTargets(t *testing.T) map[string]image {
	t.Helper()
	data, err := os.ReadFile("images/Dockerfile")
	require.NoError(t, err)
	from := regexp.MustCompile(`(?m)^FROM\s+(\S+)\s+AS\s+(\S+)`)
	out := map[string]image{}
	var cur string
	for _, line := range strings.Split(string(data), "\n") {
		if m := from.FindStringSubmatch(line); m != nil {
			cur = m[2]
			out[cur] = image{base: m[1]}
		}
		if rest, ok := strings.CutPrefix(line, "ENTRYPOINT "); ok && cur != "" {
			im := out[cur]
			require.NoError(t, json.Unmarshal([]byte(rest), &im.entrypoint), "ENTRYPOINT of %s must be exec form", cur)
			out[cur] = im
		}
	}
	return out
}

// TestImages: every image the chart and the examples run is a target of
// images/Dockerfile, the Go images are static (distroless/static), and every
// exec probe calls the binary at the path its image puts it.
func TestImages(t *testing.T) {
	targets := dockerTargets(t)
	repoTarget := map[string]string{
		"sluice-agent": "agent", "sluice-controller": "controller", "sluice-server": "server", "mocklog": "mocklog",
	}
	for repo, target := range repoTarget {
		im, ok := targets[target]
		require.True(t, ok, "target %s missing", target)
		require.Equal(t, []string{"/" + repo}, im.entrypoint, "%s entrypoint", target)
		_, err := os.Stat("../cmd/" + repo)
		require.NoError(t, err, "cmd/%s", repo)
		if target != "server" {
			assert.Contains(t, im.base, "distroless/static", "%s is a static Go binary", target)
		}
	}

	var all []*unstructured.Unstructured
	all = append(all, chartObjects(t, nil)...)
	for _, f := range exampleFiles(t) {
		all = append(all, exampleObjects(t, f)...)
	}
	checked := 0
	for _, o := range all {
		if !isWorkload(o) {
			continue
		}
		spec := podSpec(t, o)
		for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
			name := c.Image[strings.LastIndex(c.Image, "/")+1:]
			name, _, _ = strings.Cut(name, ":")
			target, ok := repoTarget[name]
			require.True(t, ok, "%s/%s runs image %s, which images/Dockerfile does not build", o.GetName(), c.Name, c.Image)
			assert.Empty(t, c.Command, "%s/%s: keep the image's entrypoint, pass args", o.GetName(), c.Name)
			for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
				if p != nil && p.Exec != nil {
					assert.Equal(t, targets[target].entrypoint[0], p.Exec.Command[0], "%s/%s probe", o.GetName(), c.Name)
					checked++
				}
			}
		}
	}
	assert.NotZero(t, checked)
}
