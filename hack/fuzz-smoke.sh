#!/usr/bin/env bash
# Runs every `func FuzzXxx` target in the module for $FUZZTIME (default 5s),
# so the seed corpora and a short random walk run on every CI pass.
#
# One fuzz-instrumented test binary is built per package (`go test -c`)
# and reused for all of that package's targets: `go test -fuzz` per target
# would relink the package's test binary every time (tens of seconds for the
# cgo DuckDB store on a loaded 2-core machine). The binary runs in the
# package directory, as `go test` runs it, so testdata/fuzz/ corpora are
# read and new crashers are written there; the generated corpus goes to the
# same place `go test -fuzz` uses ($GOCACHE/fuzz/<import path>).
#
#   hack/fuzz-smoke.sh                      # every target
#   FUZZTIME=30s hack/fuzz-smoke.sh ./agent/parse   # one package, longer
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fuzztime=${FUZZTIME:-5s}
gocache=$(go env GOCACHE)
module=$(go list -m)

# Test files: git's list on a checkout, find on an exported tree.
list_test_files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files '*_test.go'
	else
		find . -name '*_test.go' -not -path './.cache/*' -not -path './hack/envtest/*' | sed 's|^\./||'
	fi
}

declare -A targets=()
while IFS=: read -r file name; do
	dir=$(dirname "$file")
	targets[$dir]+="$name "
done < <(list_test_files | xargs -r grep -Ho '^func Fuzz[A-Za-z0-9_]*' | sed 's/func //')

only=()
for arg in "$@"; do only+=("${arg#./}"); done

# Coverage instrumentation (-d=libfuzzer, what `go test -fuzz` turns on)
# for this module's packages only: `go test -fuzz` instruments every
# dependency too, which means compiling the whole dependency graph (client-go
# for the container input, DuckDB's bindings, ...) a second time just for
# this smoke run. The decoders and parsers under test are ours, so guidance
# from our own code is what a 5 s run can use. FUZZ_INSTRUMENT_ALL=1 builds
# as `go test -fuzz` does.
if [[ -n "${FUZZ_INSTRUMENT_ALL:-}" ]]; then
	instrument=(-fuzz=.)
else
	instrument=("-gcflags=$module/...=-d=libfuzzer")
fi

bindir=$(mktemp -d)
trap 'rm -rf "$bindir"' EXIT

status=0 ntargets=0 npkgs=0 failed=()
start=$SECONDS
for dir in $(printf '%s\n' "${!targets[@]}" | sort); do
	if ((${#only[@]})) && [[ " ${only[*]} " != *" $dir "* ]]; then
		continue
	fi
	npkgs=$((npkgs + 1))
	bin="$bindir/$(echo "$dir" | tr / _).test"
	t0=$SECONDS
	if ! go test -c "${instrument[@]}" -o "$bin" "./$dir"; then
		echo "fuzz ./$dir: build failed" >&2
		status=1 failed+=("./$dir (build)")
		continue
	fi
	for name in ${targets[$dir]}; do
		ntargets=$((ntargets + 1))
		echo "fuzz ./$dir $name ($fuzztime)"
		if ! (cd "$root/$dir" && "$bin" -test.run='^$' -test.fuzz="^${name}\$" \
			-test.fuzztime="$fuzztime" -test.fuzzcachedir="$gocache/fuzz/$module/$dir" \
			-test.timeout=10m -test.paniconexit0); then
			status=1 failed+=("./$dir $name")
		fi
	done
	echo "fuzz ./$dir: $((SECONDS - t0))s (build + ${targets[$dir]% })"
done
echo "fuzz smoke: $ntargets targets in $npkgs packages, ${fuzztime} each, $((SECONDS - start))s"
if ((status)); then
	printf 'fuzz smoke FAILED: %s\n' "${failed[@]}" >&2
fi
exit $status
