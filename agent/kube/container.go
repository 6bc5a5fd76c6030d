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
	// values, the downward-API fields that the pod object answers and,
	// from a PodWatcher, the values of ConfigMaps (envFrom configMapRef,
	// valueFrom configMapKeyRef). Secret-sourced variables are never set.
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

// ConfigMapLookup answers the data of a ConfigMap in the pod's namespace
// by name, and whether it could be read.
type ConfigMapLookup func(name string) (data map[string]string, ok bool)

// ContainersOf returns the containers of pod: regular, init (native
// sidecars write logs too) and ephemeral ones. Their env holds what the
// pod object alone answers: ConfigMap references are left unset (see
// ContainersWithConfigMaps).
func ContainersOf(pod *corev1.Pod) []Container {
	out, _ := ContainersWithConfigMaps(pod, nil)
	return out
}

// RefersToConfigMaps reports whether a container of pod takes env from a
// ConfigMap.
func RefersToConfigMaps(pod *corev1.Pod) bool {
	refers := func(envFrom []corev1.EnvFromSource, env []corev1.EnvVar) bool {
		for _, s := range envFrom {
			if s.ConfigMapRef != nil {
				return true
			}
		}
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				return true
			}
		}
		return false
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if refers(cs[i].EnvFrom, cs[i].Env) {
				return true
			}
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if ec := &pod.Spec.EphemeralContainers[i]; refers(ec.EnvFrom, ec.Env) {
			return true
		}
	}
	return false
}

// ContainersWithConfigMaps is ContainersOf with the env that ConfigMaps
// give (envFrom configMapRef and valueFrom configMapKeyRef) read through
// maps (nil: none). missing names the ConfigMaps of non-optional
// references that maps could not answer (a map may be named more than
// once): the kubelet would not start such a container, and the variables
// are left unset here.
func ContainersWithConfigMaps(pod *corev1.Pod, maps ConfigMapLookup) (out []Container, missing []string) {
	add := func(spec *corev1.Container) {
		var c Container
		c, missing = containerOf(pod, spec, maps, missing)
		out = append(out, c)
	}
	for i := range pod.Spec.InitContainers {
		add(&pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.EphemeralContainers {
		ec := pod.Spec.EphemeralContainers[i].EphemeralContainerCommon
		spec := corev1.Container{Name: ec.Name, Image: ec.Image, Env: ec.Env, EnvFrom: ec.EnvFrom, VolumeMounts: ec.VolumeMounts}
		add(&spec)
	}
	return out, missing
}

func containerOf(pod *corev1.Pod, spec *corev1.Container, maps ConfigMapLookup, missing []string) (Container, []string) {
	c := Container{
		Namespace: pod.Namespace, PodName: pod.Name, PodUID: string(pod.UID), Name: spec.Name,
		Image: spec.Image, PodIP: pod.Status.PodIP, PodLabels: pod.Labels,
		Pod: pod, Spec: spec, Known: true,
	}
	c.Env, missing = containerEnv(pod, spec, maps, missing)
	return c, missing
}

// containerEnv builds a container's env in the kubelet's order: envFrom
// sources first, in order, each key with its prefix; then env entries,
// which override them. Secrets (secretRef, secretKeyRef) are never read:
// the agent has no business reading them, so their variables are unset;
// resource fields are not known either.
func containerEnv(pod *corev1.Pod, spec *corev1.Container, maps ConfigMapLookup, missing []string) (map[string]string, []string) {
	var env map[string]string
	set := func(k, v string) {
		if env == nil {
			env = make(map[string]string, len(spec.Env))
		}
		env[k] = v
	}
	configMap := func(name string) (map[string]string, bool) {
		if maps == nil {
			return nil, false
		}
		return maps(name)
	}
	for _, src := range spec.EnvFrom {
		ref := src.ConfigMapRef
		if ref == nil {
			continue
		}
		data, ok := configMap(ref.Name)
		if !ok {
			if !optional(ref.Optional) {
				missing = append(missing, ref.Name)
			}
			continue
		}
		for k, v := range data {
			set(src.Prefix+k, v)
		}
	}
	for _, e := range spec.Env {
		if e.ValueFrom == nil {
			set(e.Name, e.Value)
			continue
		}
		switch {
		case e.ValueFrom.FieldRef != nil:
			if v, ok := podField(pod, e.ValueFrom.FieldRef.FieldPath); ok {
				set(e.Name, v)
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			if data, ok := configMap(ref.Name); ok {
				if v, ok := data[ref.Key]; ok {
					set(e.Name, v)
					continue
				}
			}
			// Unresolved: an envFrom value of the same name stays, as
			// with the kubelet for an optional reference.
			if !optional(ref.Optional) {
				missing = append(missing, ref.Name)
			}
		}
	}
	return env, missing
}

func optional(b *bool) bool { return b != nil && *b }

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
