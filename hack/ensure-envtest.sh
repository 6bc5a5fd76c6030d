#!/usr/bin/env bash
# Builds, once, the kube-apiserver and etcd binaries the controller's envtest
# integration tests run against, into ${SLUICE_CACHE:-<repo>/.cache}/envtest/.
#
# Why build from source: the usual envtest installer downloads prebuilt
# binaries from a bucket this project's machines cannot reach; the Go module
# proxy is reachable, so both binaries are built from their Go modules through
# the small wrapper modules under hack/envtest/ (committed with go.sum so the
# build is reproducible). Idempotent: does nothing when both binaries exist
# and report the pinned versions. Takes ~10 CPU-minutes when cold.
set -euo pipefail

KUBE_VERSION=v1.32.13
STAGING_VERSION=v0.32.13
ETCD_VERSION=v3.5.21

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${SLUICE_CACHE:-$root/.cache}"
out="$cache/envtest"
mkdir -p "$out"

# The version output is captured before matching: piping it into `grep -q`
# under pipefail fails at random, since grep exits at the first line and the
# binary dies of SIGPIPE writing the next one (exit 141).
have_apiserver() {
  [ -x "$out/kube-apiserver" ] || return 1
  local v
  v="$("$out/kube-apiserver" --version 2>/dev/null)" || return 1
  grep -qx "Kubernetes $KUBE_VERSION" <<<"$v"
}
have_etcd() {
  [ -x "$out/etcd" ] || return 1
  local v
  v="$("$out/etcd" --version 2>/dev/null)" || return 1
  grep -q "^etcd Version: ${ETCD_VERSION#v}\$" <<<"$v"
}

if have_apiserver && have_etcd; then
  echo "envtest: kube-apiserver $KUBE_VERSION and etcd $ETCD_VERSION present in $out"
  exit 0
fi

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
# Never let these builds touch the project's own go.mod.
unset GOWORK || true
build() { nice -n 10 go build -trimpath "$@"; }

# gen_apiserver_module writes hack/envtest/kube-apiserver/go.mod from the
# staging replace list of k8s.io/kubernetes's own go.mod. Only needed when
# moving to another Kubernetes version (the result is committed).
gen_apiserver_module() {
  local dir="$1" kdir
  kdir="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  {
    echo "module sluice.local/envtest/kube-apiserver"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    grep -E '=> \./staging/' "$kdir/go.mod" | awk -v v="$STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } >"$dir/go.mod"
  # Two test-only modules of k8s.io/kubernetes are not on the mirror; -e
  # tolerates them (tidy here is in the wrapper, never in the project).
  (cd "$dir" && go mod tidy -e)
}

if ! have_apiserver; then
  dir="$root/hack/envtest/kube-apiserver"
  [ -f "$dir/go.mod" ] || gen_apiserver_module "$dir"
  echo "envtest: building kube-apiserver $KUBE_VERSION (slow, niced)"
  # Version stamping as the Kubernetes release build does; client-go's
  # discovery and envtest read these.
  pkg=k8s.io/component-base/version
  minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  ldflags="-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor \
-X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  (cd "$dir" && build -ldflags "$ldflags" -o "$out/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$out/kube-apiserver.tmp" "$out/kube-apiserver"
  have_apiserver || { echo "envtest: built kube-apiserver does not report $KUBE_VERSION" >&2; exit 1; }
fi

if ! have_etcd; then
  dir="$root/hack/envtest/etcd"
  if [ ! -f "$dir/go.mod" ]; then
    printf 'module sluice.local/envtest/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/go.mod"
    (cd "$dir" && go mod tidy -e)
  fi
  echo "envtest: building etcd $ETCD_VERSION (niced)"
  if (cd "$dir" && build -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3); then
    mv "$out/etcd.tmp" "$out/etcd"
  elif command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    # Fallback: Debian's etcd-server (a different 3.5.x; envtest accepts any 3.5).
    echo "envtest: etcd build failed, falling back to Debian's etcd-server" >&2
    apt-get install -y etcd-server >/dev/null
    cp "$(command -v etcd)" "$out/etcd"
    ETCD_VERSION="v$("$out/etcd" --version | sed -n 's/^etcd Version: //p')"
  fi
  have_etcd || { echo "envtest: no usable etcd $ETCD_VERSION in $out" >&2; exit 1; }
fi

echo "envtest: ready in $out"
"$out/kube-apiserver" --version
"$out/etcd" --version | sed -n 1p
