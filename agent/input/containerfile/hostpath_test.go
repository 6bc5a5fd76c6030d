package containerfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicelog/sluice/agent/kube"
)

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web-1", UID: "uid-1", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "logs", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log/host"}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-claim"}}},
				{Name: "nfsv", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nas", Path: "/export"}}},
				{Name: "csiv", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "x"}}},
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
			},
			Containers: []corev1.Container{{
				Name: "app", Image: "web:1",
				Env: []corev1.EnvVar{{Name: "POD_NAME", Value: "web-1"}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "logs", MountPath: "/var/log/app"},
					{Name: "host", MountPath: "/var/log/app/deep/"},
					{Name: "data", MountPath: "/data", SubPath: "x"},
					{Name: "logs", MountPath: "/sub", SubPathExpr: "$(POD_NAME)"},
					{Name: "nfsv", MountPath: "/nfs"},
					{Name: "csiv", MountPath: "/csi"},
					{Name: "cfg", MountPath: "/etc/cfg"},
				},
			}},
		},
	}
}

func testContainer() kube.Container {
	return kube.ContainersOf(testPod())[0]
}

func TestHostPathTable(t *testing.T) {
	hostRoot := t.TempDir()
	volumes := "/var/lib/kubelet/pods/uid-1/volumes"
	empty := hostRoot + volumes + "/kubernetes.io~empty-dir/logs"
	require.NoError(t, os.MkdirAll(filepath.Join(hostRoot, volumes, "kubernetes.io~csi", "pv-csi", "mount"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(hostRoot, volumes, "kubernetes.io~nfs", "pv-nfs"), 0o755))
	pvFor := map[string]string{"data-claim": "pv-csi"}
	opts := MapOptions{HostRoot: hostRoot, VolumeName: func(ns, claim string) (string, error) {
		require.Equal(t, "prod", ns)
		if pv, ok := pvFor[claim]; ok {
			return pv, nil
		}
		return "", errors.New("claim not found")
	}}
	c := testContainer()
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "/var/log/app", want: empty},
		{in: "/var/log/app/a/b/", want: empty + "/a/b"},
		{in: "/var/log/app/deep/x", want: hostRoot + "/var/log/host/x"},
		{in: "/var/log/application", err: "not on a volume"},
		{in: "/data/y", want: hostRoot + volumes + "/kubernetes.io~csi/pv-csi/mount/x/y"},
		{in: "/sub/z", want: empty + "/web-1/z"},
		{in: "/nfs/a", want: hostRoot + volumes + "/kubernetes.io~nfs/nfsv/a"},
		{in: "/csi", want: hostRoot + volumes + "/kubernetes.io~csi/csiv/mount"},
		{in: "/etc/cfg/x", err: `volume "cfg" is not an emptyDir`},
		{in: "relative/path", err: "not absolute"},
		{in: "/", err: "not on a volume"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := HostPath(&c, tc.in, opts)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}

	// A PV whose plugin keeps files directly in its directory (nfs).
	pvFor["data-claim"] = "pv-nfs"
	got, err := HostPath(&c, "/data", opts)
	require.NoError(t, err)
	require.Equal(t, hostRoot+volumes+"/kubernetes.io~nfs/pv-nfs/x", got)
	// Not mounted yet, or not bound: a clear error, retried later.
	pvFor["data-claim"] = "pv-absent"
	_, err = HostPath(&c, "/data", opts)
	require.ErrorContains(t, err, "pv-absent is not mounted")
	delete(pvFor, "data-claim")
	_, err = HostPath(&c, "/data", opts)
	require.ErrorContains(t, err, "claim not found")

	// Without a host root (agent on the host) and without a pod spec.
	got, err = HostPath(&c, "/var/log/app", MapOptions{})
	require.NoError(t, err)
	require.Equal(t, volumes+"/kubernetes.io~empty-dir/logs", got)
	_, err = HostPath(&kube.Container{Name: "x"}, "/var/log", MapOptions{})
	require.ErrorContains(t, err, "pod spec not known")
}
