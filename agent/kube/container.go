// Package kube gives sluice-agent's DaemonSet mode what it needs from
// Kubernetes: the metadata of the containers on its node (from a pod
// watch scoped to the node), the selection of containers by a collection
// config (include/exclude label, env, pod label; namespace/pod/container
// regex), and the tags a container's logs carry.
//
// The watch is a client-go shared informer with a spec.nodeName field
// selector, so an agent holds the pods of its own node only.
package kube

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// Tag keys of container metadata (Logtail's names).
const (
	TagPodName       = "_pod_name_"
	TagNamespace     = "_namespace_"
	TagContainerName = "_container_name_"
	TagImageName     = "_image_name_"
	TagPodUID        = "_pod_uid_"
	TagContainerIP   = "_container_ip_"
)

// Container labels the kubelet sets on every container it creates; the
// docker-style IncludeLabel/ExcludeLabel selectors match these.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// Container is what the agent knows about one container.
type Container struct {
	Namespace, PodName, PodUID, Name string
	Image                            string
	PodIP                            string
	// PodLabels are the pod's labels (IncludeK8sLabel, ExternalK8sLabelTag).
	PodLabels map[string]string
	// Env is the container's environment as the spec gives it: literal
	// values and the downward-API fields that the pod object answers.
	Env map[string]string
	// Pod is the pod object (nil when only the log path is known).
	Pod *corev1.Pod
	// Spec is the container's spec within Pod (nil likewise).
	Spec *corev1.Container
	// Known reports whether the pod object was seen: false when the
	// container is only known from its log path.
	Known bool
}

// Labels returns the container's runtime labels (the kubelet's).
func (c *Container) Labels() map[string]string {
	return map[string]string{
		LabelPodName: c.PodName, LabelPodNamespace: c.Namespace,
		LabelPodUID: c.PodUID, LabelContainerName: c.Name,
	}
}

// label returns one runtime label without building the map.
func (c *Container) label(key string) (string, bool) {
	switch key {
	case LabelPodName:
		return c.PodName, true
	case LabelPodNamespace:
		return c.Namespace, true
	case LabelPodUID:
		return c.PodUID, true
	case LabelContainerName:
		return c.Name, true
	}
	return "", false
}

// ContainersOf returns the containers of pod: regular, init (native
// sidecars write logs too) and ephemeral ones.
func ContainersOf(pod *corev1.Pod) []Container {
	var out []Container
	add := func(spec *corev1.Container) {
		out = append(out, containerOf(pod, spec))
	}
	for i := range pod.Spec.InitContainers {
		add(&pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.EphemeralContainers {
		ec := pod.Spec.EphemeralContainers[i].EphemeralContainerCommon
		spec := corev1.Container{Name: ec.Name, Image: ec.Image, Env: ec.Env, VolumeMounts: ec.VolumeMounts}
		add(&spec)
	}
	return out
}

func containerOf(pod *corev1.Pod, spec *corev1.Container) Container {
	c := Container{
		Namespace: pod.Namespace, PodName: pod.Name, PodUID: string(pod.UID), Name: spec.Name,
		Image: spec.Image, PodIP: pod.Status.PodIP, PodLabels: pod.Labels,
		Pod: pod, Spec: spec, Known: true,
	}
	if len(spec.Env) > 0 {
		c.Env = make(map[string]string, len(spec.Env))
		for _, e := range spec.Env {
			if e.ValueFrom == nil {
				c.Env[e.Name] = e.Value
				continue
			}
			if f := e.ValueFrom.FieldRef; f != nil {
				if v, ok := podField(pod, f.FieldPath); ok {
					c.Env[e.Name] = v
				}
			}
			// Secret, ConfigMap and resource references are not resolved:
			// the agent has no business reading secrets.
		}
	}
	return c
}

func podField(pod *corev1.Pod, path string) (string, bool) {
	switch path {
	case "metadata.name":
		return pod.Name, true
	case "metadata.namespace":
		return pod.Namespace, true
	case "metadata.uid":
		return string(pod.UID), true
	case "spec.nodeName":
		return pod.Spec.NodeName, true
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, true
	case "status.podIP":
		return pod.Status.PodIP, true
	case "status.hostIP":
		return pod.Status.HostIP, true
	}
	return "", false
}

// Tagger adds a container's tags to its logs: the fixed metadata tags plus
// ExternalK8sLabelTag (pod label → tag) and ExternalEnvTag (env → tag).
type Tagger struct {
	labels [][2]string // label, tag; sorted for a stable order
	env    [][2]string
}

// NewTagger returns a tagger for a config's ExternalK8sLabelTag and
// ExternalEnvTag maps.
func NewTagger(labelTags, envTags map[string]string) *Tagger {
	pairs := func(m map[string]string) [][2]string {
		out := make([][2]string, 0, len(m))
		for k, v := range m {
			out = append(out, [2]string{k, v})
		}
		sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
		return out
	}
	return &Tagger{labels: pairs(labelTags), env: pairs(envTags)}
}

// Add calls add for each tag of c. Metadata c does not have yet (a pod
// not in the cache) is left out rather than sent empty, except the fixed
// tags that the log path gives.
func (t *Tagger) Add(c *Container, add func(key, value string)) {
	add(TagNamespace, c.Namespace)
	add(TagPodName, c.PodName)
	add(TagPodUID, c.PodUID)
	add(TagContainerName, c.Name)
	if !c.Known {
		return
	}
	add(TagImageName, c.Image)
	add(TagContainerIP, c.PodIP)
	for _, p := range t.labels {
		if v, ok := c.PodLabels[p[0]]; ok {
			add(p[1], v)
		}
	}
	for _, p := range t.env {
		if v, ok := c.Env[p[0]]; ok {
			add(p[1], v)
		}
	}
}
