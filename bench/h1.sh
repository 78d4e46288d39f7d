#!/usr/bin/env bash
# bench/h1.sh - the HTTP/1.1 rows of bench/e2e.sh (issue 13): wrk against
# spindle-hello (from memory), h2o and nginx (both from a file, one worker
# each), every server on CPU 0 (taskset -c 0), wrk -t 1 on CPU 1.
#
#   bash bench/h1.sh [--quick] [--build DIR] [--out FILE]
#
# Rows: small responses (13 B) at 64 and 256 connections, each without and
# with pipelining of 16 requests (bench/wrk_pipeline.lua), and 1 MiB bodies
# at 8 connections.  Each cell: requests/s, and the server's CPU per request
# (user + system time of its whole process group from /proc, over the run,
# divided by the requests wrk completed) -- the figure the issue's target
# is about (spindle at most 0.5x h2o's on small responses).  Non-2xx
# responses and socket errors are reported, never hidden.
#
#   --quick   2 s per run instead of 10 (a smoke test, not a measurement)
#   --build   the build tree with apps/hello/spindle-hello (default build-bench/)
#   --out     also write the markdown table there
#
# The machine may be shared: figures are only as quiet as it was.  Every
# process it starts is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-bench
DUR=10
OUT=
while (($#)); do
  case $1 in
    --quick) DUR=2 ;;
    --build) BUILD=${2:?--build needs a directory}; shift ;;
    --out) OUT=${2:?--out needs a file}; shift ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "h1: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
SPINDLE=$BUILD/apps/hello/spindle-hello
LUA=$ROOT/bench/wrk_pipeline.lua
command -v wrk >/dev/null || { echo "h1: wrk not installed (bash scripts/setup.sh bench)" >&2; exit 1; }
[[ -x $SPINDLE ]] || { echo "h1: $SPINDLE missing (build it, or --build DIR)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/spindle-h1.XXXXXX)
PG=
cleanup() {
  [[ -n $PG ]] && { kill -TERM -- "-$PG" 2>/dev/null || true; sleep 0.2; kill -KILL -- "-$PG" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT
DOCROOT=$WORK/docroot
mkdir -p "$DOCROOT"
printf 'Hello, World!' >"$DOCROOT/index.html"
/usr/bin/python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 31 + 7) & 0xff for i in range(1 << 20)))' >"$DOCROOT/1m"

free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# group_cpu_ticks PGID: utime + stime of every process in the group.
group_cpu_ticks() {
  local pg=$1 t=0 f
  for f in /proc/[0-9]*/stat; do
    local s
    s=$(cat "$f" 2>/dev/null) || continue
    s=${s##*) }
    read -r -a a <<<"$s"
    # after "pid (comm) ": state ppid pgrp ... utime is field 14 -> a[11], stime a[12]
    [[ ${a[2]} == "$pg" ]] && t=$((t + a[11] + a[12]))
  done
  echo "$t"
}

start() { # name -> PORT, PG
  local name=$1
  PORT=$(free_port)
  case $name in
    spindle)
      setsid taskset -c 0 "$SPINDLE" --shards 1 --port "$PORT" --log-level 0 --set max-requests=0 \
        --set h1-max-requests=0 >"$WORK/$name.log" 2>&1 &
      ;;
    h2o)
      cat >"$WORK/h2o.conf" <<EOF
user: root
num-threads: 1
max-connections: 10000
pid-file: $WORK/h2o.pid
error-log: $WORK/h2o.err
listen:
  host: 127.0.0.1
  port: $PORT
hosts:
  default:
    paths:
      /:
        file.dir: $DOCROOT
EOF
      setsid taskset -c 0 h2o -c "$WORK/h2o.conf" >"$WORK/$name.log" 2>&1 &
      ;;
    nginx)
      mkdir -p "$WORK/nginx"
      cat >"$WORK/nginx.conf" <<EOF
user root;
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 10000; }
http {
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=1000 inactive=60s;
  open_file_cache_valid 1s;
  keepalive_requests 100000000;
  client_body_temp_path $WORK/nginx;
  server {
    listen 127.0.0.1:$PORT;
    root $DOCROOT;
  }
}
EOF
      setsid taskset -c 0 nginx -p "$WORK/nginx" -c "$WORK/nginx.conf" -e "$WORK/nginx.err" >"$WORK/$name.log" 2>&1 &
      ;;
  esac
  PG=$!
  local i
  for ((i = 0; i < 100; i++)); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/" && return 0
    sleep 0.1
  done
  echo "h1: $name did not start" >&2
  return 1
}

stop() {
  [[ -n $PG ]] || return 0
  kill -TERM -- "-$PG" 2>/dev/null || true
  local i
  for ((i = 0; i < 50; i++)); do kill -0 -- "-$PG" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$PG" 2>/dev/null || true
  wait "$PG" 2>/dev/null || true
  PG=
}

HZ=$(getconf CLK_TCK)
ROWS=(
  "small, 64 conns|/|64|0"
  "small, 256 conns|/|256|0"
  "small, 64 conns, pipelined 16|/|64|16"
  "small, 256 conns, pipelined 16|/|256|16"
  "1 MiB, 8 conns|/1m|8|0"
)
SERVERS=(spindle)
command -v h2o >/dev/null && SERVERS+=(h2o)
command -v nginx >/dev/null && SERVERS+=(nginx)

table="| HTTP/1.1 row (wrk -t 1, ${DUR} s) |"
sep="|---|"
for s in "${SERVERS[@]}"; do table+=" $s req/s | $s CPU us/req |"; sep+="---|---|"; done
table+=$'\n'"$sep"
for row in "${ROWS[@]}"; do
  IFS='|' read -r label path conns pipe <<<"$row"
  line="| $label |"
  for s in "${SERVERS[@]}"; do
    if ! start "$s"; then line+=" did not start | |"; stop; continue; fi
    args=(-t 1 -c "$conns" -d "${DUR}s" --latency)
    ((pipe)) && args+=(-s "$LUA")
    t0=$(group_cpu_ticks "$PG")
    out=$(PIPELINE=$pipe taskset -c 1 wrk "${args[@]}" "http://127.0.0.1:$PORT$path" 2>&1 || true)
    t1=$(group_cpu_ticks "$PG")
    stop
    req=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
    bad=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr -s ' ' | tr '\n' ';' || true)
    if [[ -z $req || $req == 0 ]]; then
      line+=" no requests | ${bad:-?} |"
      continue
    fi
    cpu=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$req" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    line+=" ${rps%.*}${bad:+ ($bad)} | $cpu |"
  done
  table+=$'\n'"$line"
  echo "$line" >&2
done
note="Server CPU per request = (utime + stime of the server's process group) / requests, CLK_TCK=$HZ resolution; wrk and each server pinned to their own core; the machine may be shared: noisy."
printf '%s\n\n%s\n' "$table" "$note"
[[ -n $OUT ]] && printf '%s\n\n%s\n' "$table" "$note" >"$OUT"
exit 0
