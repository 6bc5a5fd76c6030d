package containerfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluicelog/sluice/agent/kube"
)

// Defaults of MapOptions.
const (
	DefaultHostRoot    = "/logtail_host"
	DefaultKubeletRoot = "/var/lib/kubelet"
)

// ErrNotOnVolume: the path is in the container's own (overlay) file
// system, which the agent cannot find from the pod object.
var ErrNotOnVolume = errors.New("the path is not on a volume of the container")

// MapOptions say where the host's file systems are.
type MapOptions struct {
	// HostRoot is where the host's root file system is mounted in the
	// agent ("/logtail_host" in Logtail's DaemonSet; "" when the agent
	// runs on the host).
	HostRoot string
	// KubeletRoot is the kubelet's --root-dir on the host.
	KubeletRoot string
	// VolumeName returns the persistent volume bound to a claim;
	// *kube.PodWatcher.VolumeName fits (with a context).
	VolumeName func(namespace, claim string) (string, error)
}

func (o MapOptions) host(p string) string {
	if o.HostRoot == "" {
		return p
	}
	return filepath.Join(o.HostRoot, p)
}

// HostPath maps containerPath (absolute, inside container c) to the path
// of the same directory as the agent sees it: the volume mounted at the
// longest mount path that holds containerPath, plus subPath, plus the rest
// of the path, under HostRoot.
//
//   - emptyDir:  <kubelet>/pods/<uid>/volumes/kubernetes.io~empty-dir/<volume>
//   - hostPath:  the host path itself
//   - PVC:       <kubelet>/pods/<uid>/volumes/<plugin>/<pv>[/mount] — the
//     plugin directory (kubernetes.io~csi, ~nfs, ~local-volume …) is found on
//     disk; CSI volumes keep their files in "mount"
//   - inline nfs/csi volumes: the same with the volume's name
//
// Secrets, config maps and projected volumes hold no logs and are refused.
func HostPath(c *kube.Container, containerPath string, o MapOptions) (string, error) {
	if c.Pod == nil || c.Spec == nil {
		return "", fmt.Errorf("container %s/%s/%s: pod spec not known", c.Namespace, c.PodName, c.Name)
	}
	if !filepath.IsAbs(containerPath) {
		return "", fmt.Errorf("container path %q is not absolute", containerPath)
	}
	containerPath = filepath.Clean(containerPath)
	if o.KubeletRoot == "" {
		o.KubeletRoot = DefaultKubeletRoot
	}
	var mount *corev1.VolumeMount
	for i := range c.Spec.VolumeMounts {
		m := &c.Spec.VolumeMounts[i]
		mp := filepath.Clean(m.MountPath)
		if containerPath != mp && !strings.HasPrefix(containerPath, strings.TrimSuffix(mp, "/")+"/") {
			continue
		}
		if mount == nil || len(mp) > len(filepath.Clean(mount.MountPath)) {
			mount = m
		}
	}
	if mount == nil {
		return "", fmt.Errorf("container %s/%s/%s: %s: %w: mount a volume (emptyDir, hostPath or a PVC) at its directory",
			c.Namespace, c.PodName, c.Name, containerPath, ErrNotOnVolume)
	}
	rest := strings.TrimPrefix(containerPath, filepath.Clean(mount.MountPath))
	var vol *corev1.Volume
	for i := range c.Pod.Spec.Volumes {
		if c.Pod.Spec.Volumes[i].Name == mount.Name {
			vol = &c.Pod.Spec.Volumes[i]
		}
	}
	if vol == nil {
		return "", fmt.Errorf("container %s/%s/%s: volume %q of mount %s not in the pod spec", c.Namespace, c.PodName, c.Name, mount.Name, mount.MountPath)
	}
	volumes := filepath.Join(o.KubeletRoot, "pods", c.PodUID, "volumes")
	var base string
	switch src := vol.VolumeSource; {
	case src.EmptyDir != nil:
		base = filepath.Join(volumes, "kubernetes.io~empty-dir", vol.Name)
	case src.HostPath != nil:
		base = src.HostPath.Path
	case src.NFS != nil:
		base = filepath.Join(volumes, "kubernetes.io~nfs", vol.Name)
	case src.CSI != nil:
		base = filepath.Join(volumes, "kubernetes.io~csi", vol.Name, "mount")
	case src.PersistentVolumeClaim != nil:
		if o.VolumeName == nil {
			return "", fmt.Errorf("volume %q: persistent volume claims need the API server (no VolumeName lookup)", vol.Name)
		}
		pv, err := o.VolumeName(c.Namespace, src.PersistentVolumeClaim.ClaimName)
		if err != nil {
			return "", fmt.Errorf("volume %q: %w", vol.Name, err)
		}
		if base, err = pvDir(volumes, pv, o); err != nil {
			return "", fmt.Errorf("volume %q (claim %s): %w", vol.Name, src.PersistentVolumeClaim.ClaimName, err)
		}
	default:
		return "", fmt.Errorf("volume %q is not an emptyDir, hostPath, nfs, csi or persistentVolumeClaim volume: logs cannot be collected from it", vol.Name)
	}
	sub := mount.SubPath
	if mount.SubPathExpr != "" {
		sub = expandEnv(mount.SubPathExpr, c.Env)
	}
	return o.host(filepath.Join(base, sub, rest)), nil
}

// pvDir finds the directory the kubelet mounted persistent volume pv at:
// the plugin directory name depends on the volume type, which the claim
// does not tell, so it is looked up on disk.
func pvDir(volumes, pv string, o MapOptions) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(o.host(volumes), "*", pv))
	if len(matches) == 0 {
		return "", fmt.Errorf("persistent volume %s is not mounted under %s (yet)", pv, o.host(volumes))
	}
	plugin := filepath.Base(filepath.Dir(matches[0]))
	base := filepath.Join(volumes, plugin, pv)
	if plugin == "kubernetes.io~csi" {
		base = filepath.Join(base, "mount")
	} else if st, err := os.Stat(filepath.Join(matches[0], "mount")); err == nil && st.IsDir() {
		base = filepath.Join(base, "mount")
	}
	return base, nil
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// expandEnv expands $(VAR) as the kubelet does for subPathExpr.
func expandEnv(s string, env map[string]string) string {
	return envRef.ReplaceAllStringFunc(s, func(m string) string {
		return env[m[2:len(m)-1]]
	})
}
