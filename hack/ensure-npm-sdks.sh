#!/usr/bin/env bash
# Installs, once, the npm Log Service SDKs the server's node test drives
# (server/app/testdata/node-sdks.cjs, run by TestNodeSDKs):
# @alicloud/sls20201230 (the current official SDK, with its default v1
# hmac-sha256 signing) and aliyun-sdk (the older JavaScript SDK), from the
# npm registry into $SLUICE_CACHE/npm-sdks (gitignored). Idempotent: does
# nothing when both are installed at the pinned versions. node and npm come
# from the Debian packages when missing (as root or with sudo, like
# ensure-chromium.sh); when that is impossible it says so and exits 0, and
# the test skips (fails under SLUICE_REQUIRE_ALL=1 with the same hint).
set -euo pipefail
cd "$(dirname "$0")/.."

SLS20201230_VERSION=5.9.0
ALIYUN_SDK_VERSION=1.12.10
dir="${SLUICE_CACHE:-$PWD/.cache}/npm-sdks"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    as_root=(false)
  fi
  if ! command -v apt-get >/dev/null 2>&1 || ! "${as_root[@]}" true 2>/dev/null; then
    echo "npm-sdks: node and npm are needed (node 18 or later): sudo apt-get install -y nodejs npm" >&2
    exit 0
  fi
  apt-cache show nodejs >/dev/null 2>&1 || "${as_root[@]}" apt-get update -q
  "${as_root[@]}" apt-get install -y -q --no-install-recommends nodejs npm
fi

installed() { # name version
  local f="$dir/node_modules/$1/package.json"
  [ -f "$f" ] && [ "$(node -p "require('$f').version" 2>/dev/null)" = "$2" ]
}

if installed @alicloud/sls20201230 "$SLS20201230_VERSION" && installed aliyun-sdk "$ALIYUN_SDK_VERSION"; then
  echo "npm-sdks: @alicloud/sls20201230@$SLS20201230_VERSION aliyun-sdk@$ALIYUN_SDK_VERSION in $dir"
  exit 0
fi

mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"name":"sluice-npm-sdks","private":true}' >"$dir/package.json"
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
  "@alicloud/sls20201230@$SLS20201230_VERSION" "aliyun-sdk@$ALIYUN_SDK_VERSION"
echo "npm-sdks: installed in $dir"
