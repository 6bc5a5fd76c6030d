#!/usr/bin/env bash
# Installs, once, the PostgreSQL server binaries that the PostgreSQL tests
# (server/meta/postgres, the object-storage store, e2e/scaleout) run against:
# Debian's postgresql package. No service is started or assumed: each test
# binary initdb's a throw-away cluster in a temporary directory and runs
# postgres on a private port and socket directory (internal/pgtest), as the
# `postgres` user when the tests run as root (postgres refuses root).
#
# Idempotent: does nothing when initdb and postgres are found (in
# $SLUICE_PG_BIN, or the newest /usr/lib/postgresql/*/bin). Uses sudo when
# not root; when neither works it says how to install by hand and exits 0 so
# the rest of ensure-test-deps.sh still runs (the tests then skip, or fail
# under SLUICE_REQUIRE_ALL=1 with the same hint).
set -euo pipefail

find_bin() {
  if [ -n "${SLUICE_PG_BIN:-}" ]; then
    [ -x "$SLUICE_PG_BIN/initdb" ] && [ -x "$SLUICE_PG_BIN/postgres" ] && echo "$SLUICE_PG_BIN"
    return
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
      echo "$d"
      return
    fi
  done
}

if bin="$(find_bin)" && [ -n "$bin" ]; then
  echo "postgres: $("$bin/postgres" --version) in $bin"
  exit 0
fi

if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "postgres: no PostgreSQL server binaries found and this user cannot install packages." >&2
  echo "postgres: install them with: sudo apt-get install -y postgresql (or set SLUICE_PG_BIN to a directory with initdb and postgres)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "postgres: no apt-get on this machine; install PostgreSQL and set SLUICE_PG_BIN=/path/to/bin" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show postgresql >/dev/null 2>&1; then
  "${as_root[@]}" apt-get update -q
fi
# The Debian package creates the postgres user and the binaries; its
# post-install may try to create and start a cluster, which the tests do not
# use (on machines without an init system that step is skipped).
"${as_root[@]}" apt-get install -y -q --no-install-recommends postgresql
bin="$(find_bin)"
[ -n "$bin" ] || { echo "postgres: installed, but no initdb/postgres under /usr/lib/postgresql/*/bin" >&2; exit 1; }
echo "postgres: installed $("$bin/postgres" --version) in $bin"
