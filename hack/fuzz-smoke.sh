#!/usr/bin/env bash
# Runs every `func FuzzXxx` target in the module for $FUZZTIME (default 5s),
# so the seed corpora and a short random walk run on every CI pass.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
status=0
while IFS=: read -r file name; do
  pkg="./$(dirname "$file")"
  echo "fuzz $pkg $name ($fuzztime)"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
    status=1
  fi
done < <(git ls-files '*_test.go' | xargs -r grep -Ho '^func Fuzz[A-Za-z0-9_]*' | sed 's/func //')
exit $status
