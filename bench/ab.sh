#!/usr/bin/env bash
# bench/ab.sh - two spindle-hello binaries, paired: server CPU time per
# request of A and B in alternating runs (A then B, B then A, ...), each
# server with one shard pinned to CPU 0 and h2load pinned to CPU 1, for
# the e2e rows small-mux (-c 16 -m 64) and many-conns (-c 256 -m 8) on "/".
# Every repetition's B/A ratio is printed: on a shared or drifting machine
# compare the pairs and their spread, not one figure.  For "did this change
# cost anything" (a refactoring, a merge); the e2e suite against peers is
# bench/e2e.sh.
#
#   bash bench/ab.sh A_BIN B_BIN [--reps N] [-n N]
#
#   --reps N  repetitions per row (default 4)
#   -n N      requests per run (default 400000)
# CPU is the sum of the server's threads' run time
# (/proc/PID/task/*/schedstat) over the measured run, divided by the
# requests that succeeded.
set -euo pipefail

[[ $# -ge 2 ]] || { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
A=$1 B=$2; shift 2
REPS=4 N=400000
while (( $# )); do
  case $1 in
    --reps) REPS=${2:?}; shift ;;
    -n) N=${2:?}; shift ;;
    *) echo "ab.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
for b in "$A" "$B"; do [[ -x $b ]] || { echo "ab.sh: $b is not executable" >&2; exit 2; }; done
command -v h2load >/dev/null || { echo "ab.sh: h2load missing (scripts/setup.sh test)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/spindle-ab.XXXXXX)
SRV=
cleanup() {
  [[ -n $SRV ]] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

cpu_ns() {
  local t sum=0
  for t in /proc/"$1"/task/*/schedstat; do
    read -r ns _ <"$t" && sum=$((sum + ns))
  done
  echo "$sum"
}

# run_one BIN C M: prints the server's ns of CPU per succeeded request
run_one() {
  local port
  port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  taskset -c 0 "$1" --port "$port" --shards 1 --log-level 0 --set max-requests=0 \
    >"$WORK/out" 2>"$WORK/err" &
  SRV=$!
  for _ in $(seq 100); do grep -q "listening on" "$WORK/out" 2>/dev/null && break; sleep 0.05; done
  h2load -n 2000 -c "$2" -m "$3" "http://127.0.0.1:$port/" >/dev/null # warm-up
  local a b out ok
  a=$(cpu_ns "$SRV")
  out=$(taskset -c 1 h2load -t 1 -n "$N" -c "$2" -m "$3" "http://127.0.0.1:$port/")
  b=$(cpu_ns "$SRV")
  kill "$SRV"; wait "$SRV" || true; SRV=
  ok=$(sed -n 's/.* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
  echo $(( (b - a) / (ok > 0 ? ok : 1) ))
}

echo "A = $A"
echo "B = $B"
echo "| row | rep | A ns/req | B ns/req | B/A |"
echo "|---|---|---|---|---|"
for row in "small-mux 16 64" "many-conns 256 8"; do
  read -r name c m <<<"$row"
  for rep in $(seq "$REPS"); do
    if (( rep % 2 )); then a=$(run_one "$A" "$c" "$m"); b=$(run_one "$B" "$c" "$m")
    else b=$(run_one "$B" "$c" "$m"); a=$(run_one "$A" "$c" "$m"); fi
    echo "| $name | $rep | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }') |"
  done
done
