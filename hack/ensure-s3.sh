#!/usr/bin/env bash
# Builds, once, the S3-compatible object store that the object-storage tests
# (server/objstore, server/store/duckdb in s3 mode, e2e/scaleout) run
# against: SeaweedFS's `weed` (Apache-2.0; `weed server -s3` is a master,
# volume server, filer and S3 gateway in one process), into
# ${SLUICE_CACHE:-<repo>/.cache}/s3/weed.
#
# Why built from its Go module: prebuilt release binaries come from a host
# this project's machines cannot reach; the Go module proxy is reachable.
# SeaweedFS's go.mod has replace directives, which `go install mod@version`
# refuses, so the module source is copied out of the module cache and built
# in that copy (read-only files made writable; the copy is removed after).
# MinIO would be an alternative but is AGPL. Idempotent: does nothing when
# the binary exists and reports the pinned version. Takes ~10 CPU-minutes
# cold (niced, so it shares the machine).
set -euo pipefail

# A pseudo-version the module proxy serves (releases of this module are not
# tagged in the form Go accepts).
WEED_VERSION=v0.0.0-20261109003541-7506e5f91cd6

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${SLUICE_CACHE:-$root/.cache}"
out="$cache/s3"
mkdir -p "$out"

have_weed() {
  [ -x "$out/weed" ] && [ -f "$out/weed.version" ] && [ "$(cat "$out/weed.version")" = "$WEED_VERSION" ]
}

if have_weed; then
  echo "s3: SeaweedFS weed $WEED_VERSION present in $out"
  exit 0
fi

export CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
unset GOWORK || true

src="$(cd /tmp && go mod download -json "github.com/seaweedfs/seaweedfs@$WEED_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -d "$src" ] || { echo "s3: could not download github.com/seaweedfs/seaweedfs@$WEED_VERSION" >&2; exit 1; }

work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
echo "s3: building SeaweedFS weed $WEED_VERSION (slow, niced)"
cp -r "$src" "$work/seaweedfs"
chmod -R u+w "$work/seaweedfs"
(cd "$work/seaweedfs" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$out/weed.tmp" ./weed)
mv "$out/weed.tmp" "$out/weed"
echo "$WEED_VERSION" >"$out/weed.version"
"$out/weed" version 2>/dev/null | head -n 1 || true
echo "s3: ready in $out"
