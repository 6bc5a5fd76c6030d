package kube

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSelectorTable(t *testing.T) {
	app := Container{Namespace: "prod", PodName: "web-7d9f", PodUID: "u1", Name: "nginx", Known: true,
		PodLabels: map[string]string{"app": "web", "tier": "frontend"},
		Env:       map[string]string{"LOG": "on", "STAGE": "prod-eu"}}
	sidecar := Container{Namespace: "kube-system", PodName: "coredns-1", PodUID: "u2", Name: "coredns", Known: true,
		PodLabels: map[string]string{"k8s-app": "kube-dns"}}
	unknown := Container{Namespace: "prod", PodName: "web-new", PodUID: "u3", Name: "nginx"} // from the log path only

	for _, tc := range []struct {
		name string
		cfg  SelectorConfig
		want map[string]bool // pod name → selected
	}{
		{"empty selects all", SelectorConfig{}, map[string]bool{"web-7d9f": true, "coredns-1": true, "web-new": true}},
		{"namespace regex", SelectorConfig{K8sNamespaceRegex: "^prod$"}, map[string]bool{"web-7d9f": true, "coredns-1": false, "web-new": true}},
		{"pod regex unanchored", SelectorConfig{K8sPodRegex: "web"}, map[string]bool{"web-7d9f": true, "coredns-1": false, "web-new": true}},
		{"container regex", SelectorConfig{K8sContainerRegex: "^core"}, map[string]bool{"web-7d9f": false, "coredns-1": true, "web-new": false}},
		{"k8s label exact", SelectorConfig{IncludeK8sLabel: map[string]string{"app": "web"}}, map[string]bool{"web-7d9f": true, "coredns-1": false, "web-new": false}},
		{"k8s label present", SelectorConfig{IncludeK8sLabel: map[string]string{"k8s-app": ""}}, map[string]bool{"web-7d9f": false, "coredns-1": true, "web-new": false}},
		{"k8s label regex", SelectorConfig{IncludeK8sLabel: map[string]string{"tier": "^front.*$"}}, map[string]bool{"web-7d9f": true, "coredns-1": false, "web-new": false}},
		{"entries OR", SelectorConfig{IncludeK8sLabel: map[string]string{"app": "nope", "k8s-app": "kube-dns"}}, map[string]bool{"web-7d9f": false, "coredns-1": true}},
		{"maps AND", SelectorConfig{IncludeK8sLabel: map[string]string{"app": "web"}, IncludeEnv: map[string]string{"LOG": "off"}}, map[string]bool{"web-7d9f": false, "coredns-1": false}},
		{"maps AND both hold", SelectorConfig{IncludeK8sLabel: map[string]string{"app": "web"}, IncludeEnv: map[string]string{"STAGE": "^prod-.*$"}}, map[string]bool{"web-7d9f": true, "coredns-1": false}},
		{"exclude env", SelectorConfig{ExcludeEnv: map[string]string{"LOG": ""}}, map[string]bool{"web-7d9f": false, "coredns-1": true, "web-new": true}},
		{"exclude k8s label beats include", SelectorConfig{IncludeK8sLabel: map[string]string{"app": ""}, ExcludeK8sLabel: map[string]string{"tier": "frontend"}}, map[string]bool{"web-7d9f": false}},
		{"exact is not substring", SelectorConfig{IncludeEnv: map[string]string{"STAGE": "prod"}}, map[string]bool{"web-7d9f": false}},
		{"kubelet container label", SelectorConfig{IncludeLabel: map[string]string{LabelContainerName: "nginx"}}, map[string]bool{"web-7d9f": true, "coredns-1": false, "web-new": true}},
		{"exclude kubelet namespace label regex", SelectorConfig{ExcludeLabel: map[string]string{LabelPodNamespace: "^kube-.*$"}}, map[string]bool{"web-7d9f": true, "coredns-1": false, "web-new": true}},
		{"unknown docker label never matches", SelectorConfig{IncludeLabel: map[string]string{"com.example": ""}}, map[string]bool{"web-7d9f": false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSelector(tc.cfg)
			require.NoError(t, err)
			for _, c := range []*Container{&app, &sidecar, &unknown} {
				if want, ok := tc.want[c.PodName]; ok {
					require.Equal(t, want, s.Match(c), c.PodName)
				}
			}
		})
	}
}

func TestSelectorNeedsPodAndErrors(t *testing.T) {
	s, err := NewSelector(SelectorConfig{K8sPodRegex: "x", IncludeLabel: map[string]string{LabelPodName: ""}})
	require.NoError(t, err)
	require.False(t, s.NeedsPod(), "namespace/pod/container and kubelet labels come from the log path")
	s, err = NewSelector(SelectorConfig{ExcludeEnv: map[string]string{"A": ""}})
	require.NoError(t, err)
	require.True(t, s.NeedsPod())

	_, err = NewSelector(SelectorConfig{IncludeEnv: map[string]string{"A": "^(broken$"}, K8sPodRegex: "("})
	require.ErrorContains(t, err, "IncludeEnv.A")
	require.ErrorContains(t, err, "K8sPodRegex")
}

func TestTagger(t *testing.T) {
	tg := NewTagger(map[string]string{"app": "app_tag", "missing": "x"}, map[string]string{"STAGE": "stage"})
	c := Container{Namespace: "ns", PodName: "p", PodUID: "u", Name: "c", Image: "nginx:1", PodIP: "10.0.0.1", Known: true,
		PodLabels: map[string]string{"app": "web"}, Env: map[string]string{"STAGE": "prod"}}
	var got [][2]string
	tg.Add(&c, func(k, v string) { got = append(got, [2]string{k, v}) })
	require.Equal(t, [][2]string{
		{TagNamespace, "ns"}, {TagPodName, "p"}, {TagPodUID, "u"}, {TagContainerName, "c"},
		{TagImageName, "nginx:1"}, {TagContainerIP, "10.0.0.1"}, {"app_tag", "web"}, {"stage", "prod"},
	}, got)
	got = nil
	c.Known = false
	tg.Add(&c, func(k, v string) { got = append(got, [2]string{k, v}) })
	require.Len(t, got, 4, "only what the log path tells")
}
