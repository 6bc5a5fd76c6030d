package test

// A small kubelet for the seeds tests: it runs the containers of a pod spec
// taken from a manifest the way a node would, with real processes.
//
//   - The agent image's containers run from a root file system laid out as
//     deploy/images/Dockerfile lays out the image (/sluice-agent, the links
//     `sluice-agent applets --install` makes, /tmp), in a private mount and
//     UTS namespace (unshare) chrooted into it, as the image's user, with the
//     pod's volumes bind-mounted at their mountPaths. The manifest's
//     command/args (or the image's ENTRYPOINT/CMD), env (downward API and
//     Secret references resolved) and exec probes run unchanged: paths such
//     as /var/log/nginx, /usr/local/ilogtail/run_logtail.sh or
//     /etc/ilogtail/checkpoint are the manifest's own.
//   - The Service DNS name sluice-server.sluice.svc resolves through the
//     root file system's /etc/hosts to a loopback address of its own where
//     sluice-server listens on the chart's port, so the default endpoint of
//     the Logtail environment reaches it without being set.
//   - The guides' log generator (docker-log-test's /bin/mock_log) is
//     replaced by mocklog with the container's args, run on the host with
//     --path mapped through the container's volume mounts; its stdout and
//     stderr are what the container runtime would store, written as CRI
//     lines where the pod has a serverless stdout volume (flexVolume
//     alicloud/pod-stdlog).
//
// Namespaces and chroot need root (CAP_SYS_ADMIN, CAP_SYS_CHROOT), as
// e2e's device test does; without them the seeds tests skip, or fail under
// SLUICE_REQUIRE_ALL=1.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/sluicelog/sluice/internal/testenv"
)

// Images the harness knows how to run.
const (
	agentImage   = "sluice-agent"
	mocklogImage = "mocklog"
	// imagePath is the PATH of the distroless images.
	imagePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// nonroot is the images' USER.
	nonroot = 65532
)

// imageName is the repository's last path element of a container image.
func imageName(image string) string {
	name := image[strings.LastIndex(image, "/")+1:]
	name, _, _ = strings.Cut(name, ":")
	return name
}

// imageDefaults reads ENTRYPOINT and CMD of a Dockerfile target.
func imageDefaults(t *testing.T, target string) (entrypoint, cmd []string) {
	t.Helper()
	data, err := os.ReadFile("../images/Dockerfile")
	require.NoError(t, err)
	from := regexp.MustCompile(`(?m)^FROM\s+\S+\s+AS\s+(\S+)`)
	var cur string
	for _, line := range strings.Split(string(data), "\n") {
		if m := from.FindStringSubmatch(line); m != nil {
			cur = m[1]
		}
		if cur != target {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "ENTRYPOINT "); ok {
			require.NoError(t, json.Unmarshal([]byte(rest), &entrypoint))
		}
		if rest, ok := strings.CutPrefix(line, "CMD "); ok {
			require.NoError(t, json.Unmarshal([]byte(rest), &cmd))
		}
	}
	require.NotEmpty(t, entrypoint, "ENTRYPOINT of target %s", target)
	return entrypoint, cmd
}

// requireNamespaces skips (or fails under SLUICE_REQUIRE_ALL) without the
// privileges the harness needs.
func requireNamespaces(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	probe := exec.Command("unshare", "--mount", "--uts", "--propagation", "private", "chroot", "/", "true")
	probe.Dir = dir
	if out, err := probe.CombinedOutput(); err != nil {
		testenv.SkipOrFail(t, "the seeds tests run agents in mount namespaces with chroot (root, CAP_SYS_ADMIN and CAP_SYS_CHROOT): %v: %s", err, out)
	}
}

// loopbackServerIP picks a loopback address where port is free: the
// address sluice-server.sluice.svc resolves to in the pods.
func loopbackServerIP(port int) (string, error) {
	for range 50 {
		ip := fmt.Sprintf("127.%d.%d.%d", 64+rand.IntN(128), rand.IntN(256), 1+rand.IntN(254))
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err == nil {
			ln.Close()
			return ip, nil
		}
	}
	return "", fmt.Errorf("no free loopback address for port %d", port)
}

// podEnv is what the downward API gives a pod.
type podEnv struct {
	name, namespace, uid, ip, nodeName, nodeIP string
}

func (p podEnv) field(path string) (string, bool) {
	v, ok := map[string]string{
		"metadata.name": p.name, "metadata.namespace": p.namespace, "metadata.uid": p.uid,
		"status.podIP": p.ip, "spec.nodeName": p.nodeName, "status.hostIP": p.nodeIP,
	}[path]
	return v, ok
}

// kubelet runs pods for one test.
type kubelet struct {
	t       *testing.T
	work    string
	bin     string                       // directory of the built binaries
	hosts   string                       // /etc/hosts of every pod
	secrets map[string]map[string]string // "ns/name" → data
	mu      sync.Mutex
	pods    []*pod
	pvcs    map[string]string // claim name → host directory (shared by pods)
	// pvcNodes is the node a claim is attached to first; an agent pod on
	// another node sees the claim through an overlayfs mount whose only
	// lower layer is the same directory: same inodes and bytes, another
	// device id, as a network volume attached to another node.
	pvcNodes map[string]string
	hostRoot string // hostPath volumes resolve under it ("" = a directory per test)
}

func newKubelet(t *testing.T, bin, serverIP string) *kubelet {
	k := &kubelet{t: t, work: t.TempDir(), bin: bin, secrets: map[string]map[string]string{}, pvcs: map[string]string{}, pvcNodes: map[string]string{}}
	k.hosts = "127.0.0.1 localhost\n" + serverIP + " sluice-server.sluice.svc sluice-server.sluice.svc.cluster.local\n"
	k.hostRoot = filepath.Join(k.work, "node")
	require.NoError(t, os.MkdirAll(k.hostRoot, 0o755))
	t.Cleanup(k.stopAll)
	return k
}

// pod is one running pod.
type pod struct {
	k          *kubelet
	env        podEnv
	spec       corev1.PodSpec
	dir        string
	volumes    map[string]string // volume name → host directory
	containers map[string]*container
}

// container is one running container.
type container struct {
	name   string
	cmd    *exec.Cmd
	env    []string
	log    string // stdout+stderr as the runtime keeps them
	uid    int
	rootfs string
	done   chan struct{}
	code   int
}

// run starts every container of spec as pod e.
func (k *kubelet) run(e podEnv, spec corev1.PodSpec) *pod {
	t := k.t
	t.Helper()
	p := &pod{k: k, env: e, spec: spec, dir: filepath.Join(k.work, "pods", e.namespace+"_"+e.name), volumes: map[string]string{}, containers: map[string]*container{}}
	require.NoError(t, os.MkdirAll(p.dir, 0o755))
	for _, v := range spec.Volumes {
		var dir string
		switch {
		case v.EmptyDir != nil, v.FlexVolume != nil:
			dir = filepath.Join(p.dir, "volumes", v.Name)
		case v.PersistentVolumeClaim != nil:
			claim := v.PersistentVolumeClaim.ClaimName
			k.mu.Lock()
			if k.pvcs[claim] == "" {
				k.pvcs[claim] = filepath.Join(k.work, "pvc", claim)
			}
			dir = k.pvcs[claim]
			if k.pvcNodes[claim] == "" {
				k.pvcNodes[claim] = e.nodeName
			}
			k.mu.Unlock()
		case v.HostPath != nil:
			dir = filepath.Join(k.hostRoot, v.HostPath.Path)
		default:
			t.Fatalf("pod %s: volume %s: the harness maps emptyDir, flexVolume, persistentVolumeClaim and hostPath", e.name, v.Name)
		}
		require.NoError(t, os.MkdirAll(dir, 0o777))
		require.NoError(t, os.Chmod(dir, 0o777)) // as kubelet makes emptyDirs
		p.volumes[v.Name] = dir
	}
	for _, c := range spec.Containers {
		p.containers[c.Name] = p.start(c)
	}
	k.mu.Lock()
	k.pods = append(k.pods, p)
	k.mu.Unlock()
	return p
}

// env resolves c's environment as the kubelet does.
func (p *pod) containerEnv(c corev1.Container) []string {
	t := p.k.t
	vals := map[string]string{}
	var order []string
	expand := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
			v = expand.ReplaceAllStringFunc(v, func(m string) string {
				if x, ok := vals[m[2:len(m)-1]]; ok {
					return x
				}
				return m
			})
		case e.ValueFrom.FieldRef != nil:
			var ok bool
			v, ok = p.env.field(e.ValueFrom.FieldRef.FieldPath)
			require.True(t, ok, "%s: field %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			var ok bool
			v, ok = p.k.secrets[p.env.namespace+"/"+ref.Name][ref.Key]
			require.True(t, ok, "%s: Secret %s/%s key %s does not exist", e.Name, p.env.namespace, ref.Name, ref.Key)
		case e.ValueFrom.ResourceFieldRef != nil:
			q := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(e.ValueFrom.ResourceFieldRef.Resource, "limits."))]
			v = fmt.Sprint(q.Value())
		}
		if _, seen := vals[e.Name]; !seen {
			order = append(order, e.Name)
		}
		vals[e.Name] = v
	}
	out := []string{imagePath, "HOSTNAME=" + p.env.name}
	for _, k := range order {
		out = append(out, k+"="+vals[k])
	}
	return out
}

// mountDir is the host directory of a volume mount (subPath, subPathExpr).
func (p *pod) mountDir(m corev1.VolumeMount, env []string) string {
	t := p.k.t
	dir, ok := p.volumes[m.Name]
	require.True(t, ok, "mount of unknown volume %s", m.Name)
	sub := m.SubPath
	if m.SubPathExpr != "" {
		lookup := map[string]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			lookup[k] = v
		}
		sub = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(m.SubPathExpr, func(s string) string {
			return lookup[s[2:len(s)-1]]
		})
	}
	if sub != "" {
		dir = filepath.Join(dir, sub)
		require.NoError(t, os.MkdirAll(dir, 0o777))
		require.NoError(t, os.Chmod(dir, 0o777))
	}
	return dir
}

// hostPath maps a path inside container c to the host (through its mounts).
func (p *pod) hostPath(c corev1.Container, env []string, path string) string {
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		mp := filepath.Clean(m.MountPath)
		if (path == mp || strings.HasPrefix(path, mp+"/")) && (best == nil || len(mp) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	require.NotNil(p.k.t, best, "container %s: %s is on no volume", c.Name, path)
	return filepath.Join(p.mountDir(*best, env), strings.TrimPrefix(path, filepath.Clean(best.MountPath)))
}

func (p *pod) start(c corev1.Container) *container {
	t := p.k.t
	env := p.containerEnv(c)
	ctr := &container{name: c.Name, env: env, log: filepath.Join(p.dir, c.Name+".log"), done: make(chan struct{})}
	logf, err := os.Create(ctr.log)
	require.NoError(t, err)
	switch imageName(c.Image) {
	case mocklogImage:
		args := append([]string(nil), c.Args...)
		if len(c.Command) > 0 {
			require.Contains(t, []string{"/bin/mock_log", "/mocklog"}, c.Command[0], "the mocklog image's commands")
			args = append(append([]string(nil), c.Command[1:]...), args...)
		}
		for i, a := range args {
			if v, ok := strings.CutPrefix(a, "--path="); ok {
				args[i] = "--path=" + p.hostPath(c, env, v)
			}
		}
		ctr.cmd = exec.Command(filepath.Join(p.k.bin, "mocklog"), args...)
		ctr.cmd.Env = env
		out := io.Writer(logf)
		if dir := p.stdlogDir(); dir != "" {
			out = newCRIWriter(t, filepath.Join(dir, c.Name, "0.log"), logf)
		}
		ctr.cmd.Stdout, ctr.cmd.Stderr = out, out
	case agentImage:
		entry, cmd := imageDefaults(t, "agent")
		argv := append(append([]string(nil), entry...), cmd...)
		switch {
		case len(c.Command) > 0:
			argv = append(append([]string(nil), c.Command...), c.Args...)
		case len(c.Args) > 0:
			argv = append(append([]string(nil), entry...), c.Args...)
		}
		ctr.uid = nonroot
		if sc := c.SecurityContext; sc != nil && sc.RunAsUser != nil {
			ctr.uid = int(*sc.RunAsUser)
		}
		ctr.rootfs = p.agentRootfs(c.Name)
		tool := func(name string) string {
			path, err := exec.LookPath(name)
			require.NoError(t, err)
			return path
		}
		mount := tool("mount")
		// The root file system is $1, a shell variable: the container's
		// environment is exactly the pod's.
		script := []string{"set -e", `R="$1"; shift`,
			fmt.Sprintf(`%s --rbind /proc "$R/proc"`, mount), fmt.Sprintf(`%s --bind /dev/null "$R/dev/null"`, mount)}
		for _, m := range c.VolumeMounts {
			src := p.mountDir(m, env)
			target := filepath.Join(ctr.rootfs, m.MountPath)
			require.NoError(t, os.MkdirAll(target, 0o755))
			if node := p.remountedPVC(m.Name); node != "" {
				upper, work := filepath.Join(p.dir, "overlay", m.Name, m.SubPath, "upper"), filepath.Join(p.dir, "overlay", m.Name, m.SubPath, "work")
				require.NoError(t, os.MkdirAll(upper, 0o777))
				require.NoError(t, os.MkdirAll(work, 0o777))
				require.NoError(t, os.Chmod(upper, 0o777))
				script = append(script, fmt.Sprintf("%s -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %q", mount, src, upper, work, target))
			} else {
				script = append(script, fmt.Sprintf("%s --bind %q %q", mount, src, target))
			}
			if m.ReadOnly {
				script = append(script, fmt.Sprintf("%s -o remount,bind,ro %q", mount, target))
			}
		}
		script = append(script, fmt.Sprintf("%s %q", tool("hostname"), p.env.name),
			fmt.Sprintf(`exec %s --userspec=%d:%d "$R" "$@"`, tool("chroot"), ctr.uid, ctr.uid))
		ctr.cmd = exec.Command("unshare", append([]string{"--mount", "--uts", "--propagation", "private",
			"/bin/sh", "-c", strings.Join(script, "\n"), "sh", ctr.rootfs}, argv...)...)
		ctr.cmd.Env = env
		ctr.cmd.Stdout, ctr.cmd.Stderr = logf, logf
	default:
		t.Fatalf("container %s runs image %s: the harness runs %s and %s", c.Name, c.Image, agentImage, mocklogImage)
	}
	// A process group per container: killing it also ends what the
	// container started (the supervised agent of `sluice-agent supervise`),
	// which would otherwise outlive the test.
	ctr.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, ctr.cmd.Start(), "start %s/%s", p.env.name, c.Name)
	go func() {
		err := ctr.cmd.Wait()
		ctr.code = ctr.cmd.ProcessState.ExitCode()
		if ctr.code < 0 && err != nil {
			ctr.code = 128 + int(ctr.cmd.ProcessState.Sys().(syscall.WaitStatus).Signal())
		}
		if w, ok := ctr.cmd.Stdout.(*criWriter); ok {
			w.Close()
		}
		_ = logf.Close()
		close(ctr.done)
	}()
	return ctr
}

// remountedPVC returns the node volume name's claim was first attached to
// when this pod runs on another one ("" otherwise).
func (p *pod) remountedPVC(volume string) string {
	for _, v := range p.spec.Volumes {
		if v.Name == volume && v.PersistentVolumeClaim != nil {
			p.k.mu.Lock()
			defer p.k.mu.Unlock()
			if first := p.k.pvcNodes[v.PersistentVolumeClaim.ClaimName]; first != p.env.nodeName {
				return first
			}
		}
	}
	return ""
}

// stdlogDir is the host directory of the pod's serverless stdout volume.
func (p *pod) stdlogDir() string {
	for _, v := range p.spec.Volumes {
		if v.FlexVolume != nil && v.FlexVolume.Driver == "alicloud/pod-stdlog" {
			return p.volumes[v.Name]
		}
	}
	return ""
}

// agentRootfs lays out the agent image for one container.
func (p *pod) agentRootfs(name string) string {
	t := p.k.t
	root := filepath.Join(p.dir, "rootfs-"+name)
	require.NoError(t, os.MkdirAll(root, 0o755))
	data, err := os.ReadFile(filepath.Join(p.k.bin, "sluice-agent"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "sluice-agent"), data, 0o755))
	out, err := exec.Command(filepath.Join(p.k.bin, "sluice-agent"), "applets", "--install", root).CombinedOutput()
	require.NoError(t, err, "sluice-agent applets --install: %s", out)
	for _, d := range []string{"tmp", "proc", "dev", "etc"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	require.NoError(t, os.Chmod(filepath.Join(root, "tmp"), 0o1777))
	require.NoError(t, os.WriteFile(filepath.Join(root, "dev", "null"), nil, 0o666))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc", "hosts"), []byte(p.k.hosts), 0o644))
	return root
}

// exec runs argv inside container name (kubectl exec, exec probes): in its
// mount namespace and root, as its user, with its environment.
func (p *pod) exec(name string, argv ...string) (string, error) {
	ctr := p.containers[name]
	require.NotNil(p.k.t, ctr, "no container %s", name)
	require.NotEmpty(p.k.t, ctr.rootfs, "exec needs an agent-image container")
	pid := strconv.Itoa(ctr.cmd.Process.Pid)
	args := append([]string{"--target", pid, "--mount", "--uts", "--root", "--wd=/",
		"--setuid", strconv.Itoa(ctr.uid), "--setgid", strconv.Itoa(ctr.uid), "--"}, argv...)
	cmd := exec.Command("nsenter", args...)
	cmd.Env = ctr.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// probe runs the exec probe until it passes or timeout.
func (p *pod) probe(name string, pr *corev1.Probe, timeout time.Duration) string {
	t := p.k.t
	t.Helper()
	require.NotNil(t, pr, "container %s has no probe", name)
	require.NotNil(t, pr.Exec, "container %s: exec probe", name)
	var out string
	var err error
	for deadline := time.Now().Add(timeout); ; time.Sleep(300 * time.Millisecond) {
		if out, err = p.exec(name, pr.Exec.Command...); err == nil {
			return out
		}
		select {
		case <-p.containers[name].done:
			t.Fatalf("container %s exited (%d) while probing:\n%s", name, p.containers[name].code, p.tail(name))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe %q of %s never passed: %v: %s\n%s", pr.Exec.Command, name, err, out, p.tail(name))
		}
	}
}

// stop sends SIGTERM to every container and waits up to grace, then kills.
func (p *pod) stop(grace time.Duration) {
	for _, c := range p.containers {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(grace)
	for _, c := range p.containers {
		select {
		case <-c.done:
		case <-deadline:
			c.kill()
		}
	}
}

func (p *pod) tail(name string) string {
	b, _ := os.ReadFile(p.containers[name].log)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

func (k *kubelet) stopAll() {
	k.mu.Lock()
	pods := k.pods
	k.pods = nil
	k.mu.Unlock()
	for _, p := range pods {
		for _, c := range p.containers {
			c.kill()
		}
	}
}

// kill ends the container's processes (its process group) and waits.
func (c *container) kill() {
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
}

// criWriter stores a container's output as the runtime does: one CRI
// record per line, "<RFC3339Nano> stderr F <line>".
type criWriter struct {
	mu   sync.Mutex
	f    *os.File
	tee  io.Writer
	part []byte
}

func newCRIWriter(t *testing.T, path string, tee io.Writer) *criWriter {
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	return &criWriter{f: f, tee: tee}
}

func (w *criWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, _ = w.tee.Write(b)
	w.part = append(w.part, b...)
	var out []byte
	for {
		i := strings.IndexByte(string(w.part), '\n')
		if i < 0 {
			break
		}
		out = fmt.Appendf(out, "%s stderr F %s\n", time.Now().UTC().Format(time.RFC3339Nano), w.part[:i])
		w.part = w.part[i+1:]
	}
	if len(out) > 0 {
		if _, err := w.f.Write(out); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

func (w *criWriter) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.f.Close()
}

// lines counts the lines of a file.
func lines(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		n++
	}
	return n
}
