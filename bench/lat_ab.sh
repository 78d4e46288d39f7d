#!/usr/bin/env bash
# bench/lat_ab.sh - single-stream latency of spindle-hello builds, paired:
# each repetition runs every build in turn (one shard pinned to CPU 0,
# h2load -c 1 -m 1 pinned to CPU 1, 2,000 requests of warm-up), so a
# drifting VM moves all of them together.  Prints h2load's mean time per
# request and the server's CPU time per request (utime + stime from
# /proc/PID/stat, 10 ms ticks) for every build and repetition.  For "did
# this change move latency"; latency against peers is bench/e2e.sh.
#
#   bash bench/lat_ab.sh [--reps N] [-n N] LABEL=BIN[,ARG...] ...
#
#   --reps N  repetitions (default 4)
#   -n N      measured requests per run (default 30000)
#   LABEL=BIN[,ARG...]  a build and optional server arguments, comma-separated
#             (e.g. old=/tmp/old/spindle-hello new=build-bench/apps/hello/spindle-hello
#              nocqe=build-bench/apps/hello/spindle-hello,--set,send-nocqe=0)
set -euo pipefail

reps=4 n=30000 specs=()
while (($#)); do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    -n) n=$2; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *=*) specs+=("$1"); shift ;;
    *) echo "lat_ab.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
((${#specs[@]})) || { echo "lat_ab.sh: no LABEL=BIN given (see --help)" >&2; exit 2; }
command -v h2load >/dev/null || { echo "lat_ab.sh: h2load is missing (scripts/setup.sh bench)" >&2; exit 1; }

pid= log=
stop() { [[ -n $pid ]] && { kill -TERM -- "-$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }; pid=; }
trap 'stop; [[ -n $log ]] && rm -f "$log"' EXIT
log=$(mktemp)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf '| rep | build | mean us | server CPU us/req |\n|---|---|---|---|\n'
for ((rep = 1; rep <= reps; rep++)); do
  for spec in "${specs[@]}"; do
    label=${spec%%=*}
    IFS=, read -r -a argv <<<"${spec#*=}"
    [[ -x ${argv[0]} ]] || { echo "lat_ab.sh: ${argv[0]} is not executable" >&2; exit 1; }
    setsid taskset -c 0 "${argv[0]}" --shards 1 --port 0 --log-level 0 --set max-requests=0 \
      "${argv[@]:1}" >"$log" 2>&1 &
    pid=$!
    port=
    for ((i = 0; i < 100; i++)); do
      port=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$log" | head -n 1)
      [[ -n $port ]] && break
      sleep 0.05
    done
    [[ -n $port ]] || { echo "lat_ab.sh: $label did not start:" >&2; cat "$log" >&2; exit 1; }
    taskset -c 1 h2load -n 2000 -c 1 -m 1 "http://127.0.0.1:$port/" >/dev/null 2>&1
    t0=$(cpu_ticks "$pid")
    out=$(taskset -c 1 h2load -n "$n" -c 1 -m 1 "http://127.0.0.1:$port/" 2>&1)
    t1=$(cpu_ticks "$pid")
    mean=$(awk '/time for request:/ {print $6}' <<<"$out")
    tck=$(getconf CLK_TCK)
    cpu=$(awk -v a="$t0" -v b="$t1" -v n="$n" -v t="$tck" 'BEGIN {printf "%.2f", (b - a) / t * 1e6 / n}')
    printf '| %d | %s | %s | %s |\n' "$rep" "$label" "$mean" "$cpu"
    stop
  done
done
