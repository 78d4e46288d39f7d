#!/usr/bin/env bash
# bench/load/compare.sh - spindle-load against h2load, alternating repetitions.
#
#   bash bench/load/compare.sh [--quick] [--reps N] [--secs S] [--servers "spindle h2o"]
#
# Each server runs with one worker pinned to core 0 (spindle-hello
# --shards 1 --set max-requests=0; h2o num-threads 1 serving a 13-byte
# file, the size of spindle-hello's "/"); each client runs with one thread
# pinned to core 1: `spindle-load -t 1` and `h2load -t 1`, both -c 16 -m 64
# for S seconds, one after the other, N times.  Every run prints one row:
# req/s, client CPU per request (getrusage of the client process, via
# /usr/bin/time) and server CPU per request (/proc/PID/stat).  The figures
# are only as quiet as the machine: read them as pairs taken minutes apart.
# Uses the binaries of build/ (cmake --build build --target spindle-load
# spindle-hello); --quick: 1 repetition of 1 s (proves the script runs).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
reps=3 secs=5 servers="spindle h2o" conns=16 streams=64
while (($#)); do
  case $1 in
    --quick) reps=1 secs=1 ;;
    --reps) reps=$2; shift ;;
    --secs) secs=$2; shift ;;
    --servers) servers=$2; shift ;;
    -c) conns=$2; shift ;;
    -m) streams=$2; shift ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

LOAD=$root/build/bench/spindle-load
HELLO=$root/build/apps/hello/spindle-hello
for b in "$LOAD" "$HELLO"; do [[ -x $b ]] || { echo "compare.sh: $b not built" >&2; exit 2; }; done
command -v h2load >/dev/null || { echo "compare.sh: h2load is not installed" >&2; exit 2; }

work=$(mktemp -d)
srv_pid=
cleanup() {
  [[ -n $srv_pid ]] && kill -- -"$srv_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_server() {
  port=$(free_port)
  case $1 in
    spindle)
      setsid taskset -c 0 "$HELLO" --shards 1 --port "$port" --log-level 0 \
        --set max-requests=0 >"$work/srv.log" 2>&1 &
      path=/ ;;
    h2o)
      mkdir -p "$work/www"
      printf 'Hello, world\n' >"$work/www/index.html"
      cat >"$work/h2o.conf" <<EOF
user: root
num-threads: 1
pid-file: $work/h2o.pid
error-log: $work/h2o.err
http2-idle-timeout: 3600
listen:
  host: 127.0.0.1
  port: $port
hosts:
  default:
    paths:
      /:
        file.dir: $work/www
EOF
      setsid taskset -c 0 h2o -c "$work/h2o.conf" >"$work/srv.log" 2>&1 &
      path=/index.html ;;
  esac
  srv_pid=$!
  wait_port "$port" || { echo "compare.sh: $1 did not listen" >&2; exit 1; }
  # h2o forks its worker: count the CPU of the whole group.
  sleep 0.3
}

group_ticks() {
  local t=0
  for p in $(pgrep -g "$srv_pid" || true); do t=$((t + $(cpu_ticks "$p"))); done
  echo "$t"
}

run_client() { # kind -> prints "req/s client_us_per_req done"
  local out t0 t1
  t0=$(group_ticks)
  case $1 in
    spindle-load)
      out=$(/usr/bin/time -f 'CPU %U %S' taskset -c 1 "$LOAD" -t 1 -c "$conns" -m "$streams" \
        -D "$secs" --json "http://127.0.0.1:$port$path" 2>&1 >"$work/out.json" | grep '^CPU' || true)
      python3 - "$work/out.json" "$out" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
u, s = map(float, sys.argv[2].split()[1:3])
d = r["requests"]["done"]
print("%.0f %.3f %d %d" % (r["req_per_s"], (u + s) * 1e6 / max(d, 1), d, r["requests"]["failed"]))
EOF
      ;;
    h2load)
      out=$(/usr/bin/time -f 'CPU %U %S' taskset -c 1 h2load -t 1 -c "$conns" -m "$streams" \
        -D "$secs" "http://127.0.0.1:$port$path" 2>&1)
      python3 - "$out" <<'EOF'
import re, sys
o = sys.argv[1]
rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", o).group(1))
m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", o)
u, s = map(float, re.search(r"^CPU (\S+) (\S+)", o, re.M).groups())
d = int(m.group(1))
print("%.0f %.3f %d %s" % (rps, (u + s) * 1e6 / max(d, 1), d, m.group(3)))
EOF
      ;;
  esac >"$work/row"
  t1=$(group_ticks)
  read -r rps cpu done failed <"$work/row"
  local hz; hz=$(getconf CLK_TCK)
  printf '%-8s %-13s %3s %10s %12s %12s %8s\n' "$server" "$1" "$rep" "$rps" "$cpu" \
    "$(python3 -c "print('%.3f' % (($t1 - $t0) / $hz * 1e6 / max($done, 1)))")" "$failed"
}

printf '%-8s %-13s %3s %10s %12s %12s %8s\n' server client rep req/s cli_us/req srv_us/req failed
for server in $servers; do
  start_server "$server"
  for rep in $(seq "$reps"); do
    run_client spindle-load
    run_client h2load
  done
  kill -- -"$srv_pid" 2>/dev/null || true
  wait "$srv_pid" 2>/dev/null || true
  srv_pid=
done
