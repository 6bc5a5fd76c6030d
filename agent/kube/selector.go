package kube

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// SelectorConfig is how a collection config picks containers; the fields
// are those of service_docker_stdout and of a dockerFile config
// (dockerIncludeLabel… and advanced.k8s).
type SelectorConfig struct {
	IncludeLabel, ExcludeLabel       map[string]string // kubelet container labels (io.kubernetes.*)
	IncludeEnv, ExcludeEnv           map[string]string // container env
	IncludeK8sLabel, ExcludeK8sLabel map[string]string // pod labels
	K8sNamespaceRegex, K8sPodRegex   string
	K8sContainerRegex                string
}

// Selector decides whether a container's logs are collected, with Docker's
// semantics as Logtail documents them: in a map, an empty value means
// "the key is present", a value written ^…$ is a regular expression and
// any other value must be equal; entries of one map are ORed, include maps
// are ANDed, and a container matched by any exclude entry is left out. The
// namespace/pod/container regexes must match (unanchored, as upstream).
type Selector struct {
	inclLabel, exclLabel   matchMap
	inclEnv, exclEnv       matchMap
	inclK8s, exclK8s       matchMap
	namespace, pod, contnr *regexp.Regexp
}

type matcher struct {
	key   string
	value string         // exact, when re is nil and !present
	re    *regexp.Regexp // ^…$ values
	any   bool           // empty value: key present
}

type matchMap []matcher

func compileMap(name string, m map[string]string) (matchMap, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out matchMap
	var errs []error
	for _, k := range keys {
		v := m[k]
		mt := matcher{key: k, value: v, any: v == ""}
		if len(v) >= 2 && strings.HasPrefix(v, "^") && strings.HasSuffix(v, "$") {
			re, err := regexp.Compile(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.%s: %q is not a valid regular expression: %w", name, k, v, err))
				continue
			}
			mt.re = re
		}
		out = append(out, mt)
	}
	return out, errors.Join(errs...)
}

// match reports whether any entry matches the values lookup gives.
func (m matchMap) match(lookup func(string) (string, bool)) bool {
	for _, mt := range m {
		v, ok := lookup(mt.key)
		if !ok {
			continue
		}
		switch {
		case mt.any:
			return true
		case mt.re != nil:
			if mt.re.MatchString(v) {
				return true
			}
		case v == mt.value:
			return true
		}
	}
	return false
}

// NewSelector compiles cfg; errors name the field and the entry.
func NewSelector(cfg SelectorConfig) (*Selector, error) {
	s := &Selector{}
	var errs []error
	var err error
	for _, m := range []struct {
		dst  *matchMap
		name string
		src  map[string]string
	}{
		{&s.inclLabel, "IncludeLabel", cfg.IncludeLabel}, {&s.exclLabel, "ExcludeLabel", cfg.ExcludeLabel},
		{&s.inclEnv, "IncludeEnv", cfg.IncludeEnv}, {&s.exclEnv, "ExcludeEnv", cfg.ExcludeEnv},
		{&s.inclK8s, "IncludeK8sLabel", cfg.IncludeK8sLabel}, {&s.exclK8s, "ExcludeK8sLabel", cfg.ExcludeK8sLabel},
	} {
		if *m.dst, err = compileMap(m.name, m.src); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range []struct {
		dst  **regexp.Regexp
		name string
		src  string
	}{
		{&s.namespace, "K8sNamespaceRegex", cfg.K8sNamespaceRegex},
		{&s.pod, "K8sPodRegex", cfg.K8sPodRegex},
		{&s.contnr, "K8sContainerRegex", cfg.K8sContainerRegex},
	} {
		if r.src == "" {
			continue
		}
		if *r.dst, err = regexp.Compile(r.src); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a valid regular expression: %w", r.name, r.src, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// NeedsPod reports whether the selector looks at what only the pod object
// tells (env, pod labels); without it, the log path is enough.
func (s *Selector) NeedsPod() bool {
	return len(s.inclEnv)+len(s.exclEnv)+len(s.inclK8s)+len(s.exclK8s) > 0
}

// Match reports whether c is selected. A container whose pod is not known
// (c.Known false) has no env and no pod labels.
func (s *Selector) Match(c *Container) bool {
	if s.namespace != nil && !s.namespace.MatchString(c.Namespace) {
		return false
	}
	if s.pod != nil && !s.pod.MatchString(c.PodName) {
		return false
	}
	if s.contnr != nil && !s.contnr.MatchString(c.Name) {
		return false
	}
	labels := c.label
	env := func(k string) (string, bool) { v, ok := c.Env[k]; return v, ok }
	podLabels := func(k string) (string, bool) { v, ok := c.PodLabels[k]; return v, ok }
	for _, in := range []struct {
		m      matchMap
		lookup func(string) (string, bool)
	}{{s.inclLabel, labels}, {s.inclEnv, env}, {s.inclK8s, podLabels}} {
		if len(in.m) > 0 && !in.m.match(in.lookup) {
			return false
		}
	}
	return !s.exclLabel.match(labels) && !s.exclEnv.match(env) && !s.exclK8s.match(podLabels)
}
