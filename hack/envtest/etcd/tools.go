//go:build tools

// Package tools pins etcd's server module so hack/ensure-envtest.sh can build
// etcd for the controller's envtest tests. Never built itself.
package tools

import _ "go.etcd.io/etcd/server/v3"
