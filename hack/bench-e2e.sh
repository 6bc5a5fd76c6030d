#!/usr/bin/env bash
# End-to-end delivery benchmark: a 1 GiB mocklog nginx file goes through the
# real sluice-agent (--output sls: nginx regex, lz4, PutLogs) into the real
# sluice-server (embedded DuckDB store), on this machine. Reports MiB/s (wall),
# CPU-seconds per GiB and peak RSS for the agent and the server separately,
# then the agent's send-path micro-benchmark. See docs/benchmarks.md.
#
#   hack/bench-e2e.sh                  # 1 GiB
#   SIZE=100M hack/bench-e2e.sh        # quicker
#   PROFILE=1 hack/bench-e2e.sh        # also an agent CPU profile
#
# The input is generated once into $SLUICE_CACHE/bench (default .cache/bench)
# with a fixed seed; each run works in $SLUICE_CACHE/bench/run (cleared first).
# The driver is TestBenchE2E in e2e/delivery (the same harness as the delivery
# tests: real processes, provisioning through the Go SDK). CPU-seconds are
# utime+stime from /proc/<pid>/stat: the server's counted from just before the
# agent starts until the agent's last line is accepted (ingestion only), the
# agent's over its whole run; peak RSS is VmHWM. On a shared, loaded machine
# wall-clock MiB/s says more about the load than about Sluice.
set -euo pipefail

cd "$(dirname "$0")/.."
CACHE="${SLUICE_CACHE:-$PWD/.cache}/bench"
SIZE="${SIZE:-1G}"
PROFILE="${PROFILE:-}"
mkdir -p "$CACHE/bin"

go build -o "$CACHE/bin/" ./cmd/mocklog
INPUT="$CACHE/nginx-$SIZE.log"
if [[ ! -s "$INPUT" ]]; then
	echo "generating $INPUT ($SIZE of nginx lines, seed 1)" >&2
	"$CACHE/bin/mocklog" --log-type nginx --path "$INPUT.tmp" --size "$SIZE" --seed 1
	mv "$INPUT.tmp" "$INPUT"
fi

export SLUICE_BENCH_E2E_FILE="$INPUT"
export SLUICE_BENCH_E2E_DIR="$CACHE/run"
export SLUICE_BENCH_E2E_OUT="$CACHE/result-$SIZE.json"
if [[ -n "$PROFILE" ]]; then
	export SLUICE_BENCH_E2E_AGENT_PROFILE="$CACHE/cpu-agent.pprof"
fi
echo "== agent → server, $INPUT" >&2
go test -count=1 -timeout 60m -run '^TestBenchE2E$' -v ./e2e/delivery/
echo "figures: $SLUICE_BENCH_E2E_OUT" >&2
cat "$SLUICE_BENCH_E2E_OUT"
echo
if [[ -n "$PROFILE" ]]; then
	echo "agent CPU profile: go tool pprof -top $SLUICE_BENCH_E2E_AGENT_PROFILE" >&2
fi

echo "== agent send path (go test -bench SendPath ./agent/output/sls)" >&2
go test -run '^$' -bench SendPath -benchmem -count 1 ./agent/output/sls | grep -E '^(Benchmark|ok|FAIL)'
