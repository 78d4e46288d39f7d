#!/usr/bin/env bash
# proxy.sh - what an upstream call costs: spindle-proxy (apps/proxy) in front
# of spindle-hello, both one shard, h2load through the proxy.  Prints, per
# run, the requests that succeeded and the proxy's CPU (utime + stime from
# /proc) per relayed request: its server side, its upstream client and the
# relay's copy together.  CPU per request, not req/s: other load on the
# machine moves req/s far more than it moves CPU per request.
#
#   bash bench/proxy.sh [--quick] [RUNS]     (default 3 runs of 200k; build/ first)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
hello=${SPINDLE_HELLO:-$root/build/apps/hello/spindle-hello}
proxy=${SPINDLE_PROXY:-$root/build/apps/proxy/spindle-proxy}
n=200000
if [[ ${1:-} == --quick ]]; then n=5000; shift; fi
runs=${1:-3}
for b in "$hello" "$proxy"; do
  [[ -x $b ]] || { echo "proxy.sh: build it first ($b)" >&2; exit 2; }
done
command -v h2load >/dev/null || { echo "proxy.sh: h2load (nghttp2-client) needed" >&2; exit 2; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
op=$(free_port)
pp=$(free_port)
"$hello" --port "$op" --shards 1 --set max-requests=0 >/dev/null 2>&1 &
hpid=$!
"$proxy" --port "$pp" --shards 1 --set max-requests=0 --upstream "127.0.0.1:$op" >/dev/null 2>&1 &
ppid=$!
trap 'kill $hpid $ppid 2>/dev/null; wait $hpid $ppid 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/"$pp") 2>/dev/null && break
  sleep 0.1
done
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$ppid/stat"; }
for ((r = 1; r <= runs; r++)); do
  a=$(cpu)
  ok=$(h2load -n "$n" -c 8 -m 32 "http://127.0.0.1:$pp/" 2>&1 | grep -oE '[0-9]+ succeeded' || true)
  b=$(cpu)
  awk -v r="$r" -v ok="$ok" -v d="$((b - a))" -v t="$tick" -v n="$n" \
    'BEGIN { printf "run %d  %s of %d  proxy cpu %.2f us/request\n", r, ok, n, d * 1e6 / t / n }'
done
