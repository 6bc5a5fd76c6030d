#!/usr/bin/env bash
# Installs, once, the headless Chromium the web console's browser tests
# (server/console) drive through chromedp: the Debian package `chromium`.
#
# Why a system package and not $SLUICE_CACHE: Chromium needs dozens of shared
# libraries (nss, gtk, fonts) that only the distribution wires up correctly;
# the Debian archive is reachable from CI. Idempotent: does nothing when
# /usr/bin/chromium (or $SLUICE_CHROMIUM) already runs. Uses sudo when not
# root; when neither works it says how to install it by hand and exits 0 so
# the rest of ensure-test-deps.sh still runs (the tests then fail under
# SLUICE_REQUIRE_ALL=1 with the same hint).
set -euo pipefail

bin="${SLUICE_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$bin" ] && "$bin" --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1; then
  echo "chromium: $("$bin" --version 2>/dev/null) at $bin"
  exit 0
fi

if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "chromium: $bin is missing and this user cannot install packages." >&2
  echo "chromium: install it with: sudo apt-get install -y chromium fonts-dejavu-core (or set SLUICE_CHROMIUM)" >&2
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: no apt-get on this machine; install Chromium and set SLUICE_CHROMIUM=/path/to/chromium" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when chromium is not known yet (apt-get
# update is the slow, network-bound step).
if ! apt-cache show chromium >/dev/null 2>&1; then
  "${as_root[@]}" apt-get update -q
fi
"${as_root[@]}" apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
echo "chromium: installed $("$bin" --version 2>/dev/null || echo '(version unknown)')"
