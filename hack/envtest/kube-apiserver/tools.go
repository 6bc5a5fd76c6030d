//go:build tools

// Package tools pins k8s.io/kubernetes so hack/ensure-envtest.sh can build
// kube-apiserver for the controller's envtest tests. Never built itself.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
