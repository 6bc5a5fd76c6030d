#!/usr/bin/env bash
# End-to-end benchmark of sluice-agent: the real binary reads a 1 GiB mocklog
# file through the whole pipeline (file input → multiline → parse → process)
# into the null output, in several modes, and reports throughput, CPU-seconds
# per GiB and peak RSS; then a steady 10 MB/s input, reporting CPU % of a core
# and RSS. See docs/benchmarks.md for figures.
#
#   hack/bench-agent.sh                 # all modes
#   MODES="raw nginx" hack/bench-agent.sh
#   STEADY_SECONDS=60 hack/bench-agent.sh
#   PROFILE=1 hack/bench-agent.sh       # also write a CPU profile per mode
#
# Inputs are generated once into $SLUICE_CACHE/bench-agent (default
# .cache/bench-agent) with a fixed seed. CPU-seconds come from /usr/bin/time
# (user+sys of the agent process), so they stay meaningful on a shared,
# loaded machine where wall-clock throughput does not.
set -euo pipefail

cd "$(dirname "$0")/.."
CACHE="${SLUICE_CACHE:-$PWD/.cache}/bench-agent"
MODES="${MODES:-raw nginx java java-regex steady}"
SIZE="${SIZE:-1G}"
STEADY_SECONDS="${STEADY_SECONDS:-30}"
STEADY_BYTES_PER_SEC="${STEADY_BYTES_PER_SEC:-10000000}"
PROFILE="${PROFILE:-}"
mkdir -p "$CACHE/bin"

echo "building sluice-agent and mocklog" >&2
go build -o "$CACHE/bin/" ./cmd/sluice-agent ./cmd/mocklog
AGENT="$CACHE/bin/sluice-agent"
MOCKLOG="$CACHE/bin/mocklog"

gen() { # gen TYPE FILE
	if [[ ! -s "$2" ]]; then
		echo "generating $2 ($SIZE of $1, seed 1)" >&2
		"$MOCKLOG" --log-type "$1" --path "$2.tmp" --size "$SIZE" --seed 1
		mv "$2.tmp" "$2"
	fi
}

# metric NAME: the sum of a metric's samples from the running agent.
metric() {
	curl -fsS "http://$ADDR/metrics" 2>/dev/null |
		awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.0f\n", s }'
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# config NAME LOGDIR PATTERN DETAIL-JSON-FRAGMENT
config() {
	cat <<EOF
{"configName":"$1","inputType":"file","outputType":"LogService",
 "outputDetail":{"projectName":"bench","logstoreName":"$1"},
 "inputDetail":{"logType":"common_reg_log","logPath":"$2","filePattern":"$3",
  "tailExisted":true,"advanced":{"tail_size_kb":104857600}, $4}}
EOF
}

detail() { # detail MODE
	case "$1" in
	raw | steady) echo '"regex":"(.*)","key":["content"],"logBeginRegex":".*"' ;;
	nginx)
		# The console's NGINX mode: 10 keys, time from $time_local.
		echo '"regex":"(\\S*) - (\\S*) \\[([^\\]]*)\\] \"([^\" ]*) ?([^\" ]*) ?([^\"]*)\" (\\d{3}) (\\d+|-) \"([^\"]*)\" \"([^\"]*)\".*",
		"key":["remote_addr","remote_user","time_local","request_method","request_uri","http_version","status","body_bytes_sent","http_referer","http_user_agent"],
		"timeKey":"time_local","timeFormat":"%d/%b/%Y:%H:%M:%S %z","logBeginRegex":".*"' ;;
	java) echo '"regex":"(.*)","key":["content"],"logBeginRegex":"\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}\\.\\d{3} .*"' ;;
	java-regex)
		echo '"logBeginRegex":"\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}\\.\\d{3} .*",
		"regex":"(\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}\\.\\d{3}) (\\w+) \\[([^\\]]*)\\] (\\S+) - ([\\s\\S]*)",
		"key":["time","level","thread","class","message"],"timeKey":"time","timeFormat":"%Y-%m-%d %H:%M:%S.%f"' ;;
	esac
}

RUN="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$RUN"' EXIT

# start_agent MODE LOGDIR PATTERN: starts the agent under /usr/bin/time.
start_agent() {
	local mode=$1
	rm -rf "$RUN/conf" "$RUN/cp.json"
	mkdir -p "$RUN/conf"
	config "bench" "$2" "$3" "$(detail "$mode")" >"$RUN/conf/bench.json"
	ADDR="127.0.0.1:$(free_port)"
	local prof=()
	[[ -n "$PROFILE" ]] && prof=(--cpu-profile "$CACHE/cpu-$mode.pprof")
	check_point_filename="$RUN/cp.json" /usr/bin/time -v -o "$RUN/time.txt" \
		"$AGENT" --config-dir "$RUN/conf" --output null --http-listen "$ADDR" \
		--stop-delay 0s --log-level warn "${prof[@]}" 2>"$RUN/agent.log" &
	TIMEPID=$!
	for _ in $(seq 100); do
		AGENTPID=$(pgrep -P "$TIMEPID" || true)
		[[ -n "$AGENTPID" ]] && curl -fsS "http://$ADDR/healthz" >/dev/null 2>&1 && return
		sleep 0.1
	done
	echo "agent did not start:" >&2
	cat "$RUN/agent.log" >&2
	exit 1
}

stop_agent() {
	kill -TERM "$AGENTPID"
	wait "$TIMEPID" || true
	if [[ -s "$RUN/agent.log" ]]; then
		echo "agent log:" >&2
		head -20 "$RUN/agent.log" >&2
	fi
}

# time_field KEY: a field of /usr/bin/time -v.
time_field() { awk -F': ' -v k="$1" 'index($0, k) { print $2 }' "$RUN/time.txt"; }

printf '%-12s %8s %10s %8s %11s %11s %10s\n' mode MiB events "MiB/s" "MiB/CPU-s" "CPU-s/GiB" "peak RSS"
for mode in $MODES; do
	[[ "$mode" == steady ]] && continue
	case "$mode" in
	raw | nginx) src="$CACHE/nginx-$SIZE.log"; gen nginx "$src" ;;
	java | java-regex) src="$CACHE/java-$SIZE.log"; gen java-multiline "$src" ;;
	*) echo "unknown mode $mode" >&2; exit 2 ;;
	esac
	bytes=$(stat -c %s "$src")
	mkdir -p "$RUN/logs-$mode"
	ln -f "$src" "$RUN/logs-$mode/app.log" 2>/dev/null || ln -sf "$src" "$RUN/logs-$mode/app.log"
	start_agent "$mode" "$RUN/logs-$mode" "app.log"
	t0=$(date +%s.%N)
	# Done when every byte was read and the output stopped moving.
	prev=-1
	while :; do
		sleep 0.1
		read_bytes=$(metric sluice_file_read_bytes_total)
		events=$(metric sluice_output_null_events_total)
		if [[ "$read_bytes" -ge "$bytes" && "$events" == "$prev" ]]; then
			break
		fi
		prev=$events
		t1=$(date +%s.%N)
	done
	stop_agent
	user=$(time_field "User time (seconds)")
	sys=$(time_field "System time (seconds)")
	rss=$(time_field "Maximum resident set size (kbytes)")
	# Wall time runs from the agent answering /healthz to the last poll
	# that still saw the output move (±0.1 s); it depends on the machine's
	# load, CPU-seconds much less so.
	awk -v m="$mode" -v b="$bytes" -v e="$events" -v u="$user" -v s="$sys" -v r="$rss" -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" 'BEGIN {
		cpu = u + s; mib = b / 1048576
		printf "%-12s %8.0f %10d %8.0f %11.0f %11.2f %7.1fMiB\n", m, mib, e, mib / w, mib / cpu, cpu * 1024 / mib, r / 1024 }'
	rm -f "$RUN/logs-$mode/app.log"
done

if [[ " $MODES " == *" steady "* ]]; then
	# Steady input: mocklog appends nginx lines at STEADY_BYTES_PER_SEC; the
	# agent's CPU is sampled from /proc over STEADY_SECONDS after a warm-up.
	src="$CACHE/nginx-$SIZE.log"
	gen nginx "$src"
	avg=$(awk -v b="$(stat -c %s "$src")" -v l="$(wc -l <"$src")" 'BEGIN { print b / l }')
	rate=$(awk -v r="$STEADY_BYTES_PER_SEC" -v a="$avg" 'BEGIN { printf "%.0f", r / a }')
	mkdir -p "$RUN/steady"
	start_agent steady "$RUN/steady" "*.log"
	"$MOCKLOG" --log-type nginx --path "$RUN/steady/app.log" --logs-per-sec "$rate" \
		--rotate-bytes 100M --rotate-keep 1 2>/dev/null &
	MOCKPID=$!
	sleep 5
	hz=$(getconf CLK_TCK)
	ticks() { awk '{ print $14 + $15 }' "/proc/$AGENTPID/stat"; }
	t0=$(ticks); s0=$(date +%s.%N); b0=$(metric sluice_file_read_bytes_total)
	sleep "$STEADY_SECONDS"
	t1=$(ticks); s1=$(date +%s.%N); b1=$(metric sluice_file_read_bytes_total)
	rss=$(awk '/VmRSS/ { print $2 }' "/proc/$AGENTPID/status")
	hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$AGENTPID/status")
	kill -TERM "$MOCKPID"; wait "$MOCKPID" || true
	stop_agent
	awk -v t0="$t0" -v t1="$t1" -v s0="$s0" -v s1="$s1" -v hz="$hz" -v b0="$b0" -v b1="$b1" \
		-v rss="$rss" -v hwm="$hwm" -v rate="$rate" 'BEGIN {
		wall = s1 - s0; cpu = (t1 - t0) / hz
		printf "steady: %.1f MB/s read (%d lines/s asked), %.2f%% of a core, RSS %.1f MiB (peak %.1f MiB)\n",
			(b1 - b0) / wall / 1e6, rate, 100 * cpu / wall, rss / 1024, hwm / 1024 }'
fi
