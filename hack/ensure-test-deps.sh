#!/usr/bin/env bash
# Installs or builds, once, the real parts integration tests run against, and
# caches them under $SLUICE_CACHE (gitignored). Each part has its own script;
# they are idempotent and fast when the cache is warm.
set -euo pipefail
cd "$(dirname "$0")/.."
for s in hack/ensure-*.sh; do
  [ "$s" = hack/ensure-test-deps.sh ] && continue
  echo "== $s"
  t0=$SECONDS
  "$s"
  echo "== $s: $((SECONDS - t0))s"
done
