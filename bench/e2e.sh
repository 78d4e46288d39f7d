#!/usr/bin/env bash
# bench/e2e.sh - end-to-end load runs: spindle against h2o and nghttpd (and
# nginx in the file rows), each server on one core (taskset -c 0), h2load on
# another (taskset -c 1).
#
#   bash bench/e2e.sh [--quick] [--reps N] [--no-build] [--no-micro]
#                     [--no-install] [--quiet-wait S] [--retries N]
#                     [--noise-max PCT] [--keep] [--only ID,...]
#
# Two kinds of rows.  In-memory rows ("small-mux", "many-conns", "1mib",
# "latency", "spin-latency", the TLS rows): spindle is spindle-hello
# answering from memory ("spin-latency": in the low-latency mode,
# --ring-spin-us 200, its CPU per request beside the latency it buys),
# while h2o and nghttpd read a file, so they do not compare the same work.
# File rows ("file-13b", "file-4k", "file-64k", "1mib-file", "file-latency",
# "file-spin-latency": spindle-static in the low-latency mode):
# every server serves the same file from the same directory: spindle is
# spindle-static (its per-shard open-file and content cache on), h2o its
# file handler, nghttpd -d, and nginx (open_file_cache on, valid 1 s).
#
#   --quick         1/10 of the requests, one repetition, short micro runs
#                   (a smoke test of the whole pipeline, not a measurement)
#   --reps N        runs per scenario and server (default 3; the median is
#                   reported); servers are interleaved within a repetition
#   --no-build      use the existing build-bench/ (default: configure and
#                   build a CMake Release tree there)
#   --no-micro      skip spindle-micro (RESULTS.md then has no micro table)
#   --no-install    do not call scripts/setup.sh bench for missing peers
#   --quiet-wait S  before each run, wait up to S seconds for the machine to
#                   be under 15% busy (default 10; --quick: 2)
#   --retries N     repeat a run up to N more times when other processes used
#                   more than --noise-max % (default 10) of the server's or the
#                   client's core during it; the least disturbed attempt is
#                   kept (default 2, at most 12 retries in all; --quick: 0)
#   --keep          keep the scratch directory (logs, h2load outputs)
#   --h1-only       only the HTTP/1.1 rows (bench/h1.sh: wrk against
#                   spindle-hello, h2o and nginx; pipelined and not)
#   --load-only     only the spindle-load rows (bench/load/e2e_rows.py: each
#                   server's one-core ceiling, spindle-load vs h2load -t 1)
#   --only ID,...   run only these scenarios (ids above; e.g. the file rows:
#                   --only file-13b,file-4k,file-64k,1mib-file,file-latency);
#                   implies --no-micro and no idle-connection run, and the
#                   report goes to bench/results/ only, not RESULTS.md
#
# The TLS rows use one self-signed ECDSA P-256 certificate made for the run
# (openssl), the same for every server, and h2load offering only
# TLS_AES_128_GCM_SHA256 for TLS 1.3 (ECDHE-ECDSA-AES128-GCM-SHA256 for 1.2:
# h2load 1.52 cannot forbid TLS 1.2) and the P-256 group (the only one
# nghttpd 1.52 accepts).  The protocol and cipher each run negotiated are
# recorded, and a run on anything else is flagged in the errors column.
#
# Writes bench/results/<timestamp>.json and .png, and regenerates
# bench/RESULTS.md.  Every process it starts is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
BUILD=$ROOT/build-bench
RESULTS=$BENCH/results
PY=/usr/bin/python3 # Debian's: the python3 first on PATH may be another one
REPORT=$BENCH/e2e_report.py
COMMAND="bash bench/e2e.sh${*:+ $*}"

QUICK=0 REPS= BUILD_IT=1 MICRO=1 INSTALL=1 QUIET_WAIT= KEEP=0 RETRIES= NOISE_MAX=10 RETRY_BUDGET=12
ONLY= H1_ONLY=0 LOAD_ONLY=0
while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --reps) REPS=${2:?--reps needs a number}; shift ;;
    --no-build) BUILD_IT=0 ;;
    --no-micro) MICRO=0 ;;
    --no-install) INSTALL=0 ;;
    --quiet-wait) QUIET_WAIT=${2:?--quiet-wait needs seconds}; shift ;;
    --retries) RETRIES=${2:?--retries needs a number}; shift ;;
    --noise-max) NOISE_MAX=${2:?--noise-max needs a percentage}; shift ;;
    --keep) KEEP=1 ;;
    --only) ONLY=,${2:?--only needs scenario ids},; MICRO=0; shift ;;
    --h1-only) H1_ONLY=1 ;;
    --load-only) LOAD_ONLY=1 ;;
    -h|--help) sed -n '2,48p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "e2e: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ -n $REPS ]] || REPS=$((QUICK ? 1 : 3))
[[ -n $QUIET_WAIT ]] || QUIET_WAIT=$((QUICK ? 2 : 10))
[[ -n $RETRIES ]] || RETRIES=$((QUICK ? 0 : 2))
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "e2e: --reps wants a positive number" >&2; exit 2; }
DIV=$((QUICK ? 10 : 1))
H2LOAD_TIMEOUT=$((QUICK ? 120 : 600))
IDLE_CONNS=1000
IDLE_TLS_CONNS=500 # issue 19: 500, then 500 more

say() { printf '%s\n' "$*"; }
die() { printf 'e2e: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Processes we start: each server runs in its own process group (setsid), so
# stopping the group also stops its helpers (h2o forks some).

STARTED=()  # process group ids
WORK=
stop_group() {
  local pg=$1 i
  kill -0 -- "-$pg" 2>/dev/null || { wait "$pg" 2>/dev/null || true; return 0; }
  kill -TERM -- "-$pg" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 -- "-$pg" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pg" 2>/dev/null || true
  wait "$pg" 2>/dev/null || true
}
forget() {
  local pg=$1 keep=() p
  for p in "${STARTED[@]}"; do [[ $p == "$pg" ]] || keep+=("$p"); done
  STARTED=("${keep[@]}")
}
cleanup() {
  local pg
  for pg in "${STARTED[@]}"; do stop_group "$pg"; done
  STARTED=()
  if [[ -n $WORK && -d $WORK ]]; then
    if ((KEEP)); then say "scratch kept in $WORK"; else rm -rf "$WORK"; fi
  fi
}
trap cleanup EXIT
trap 'say "e2e: interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------------------
# Dependencies

if ((INSTALL)); then
  bash "$ROOT/scripts/setup.sh" bench ||
    say "e2e: scripts/setup.sh could not install everything (see above); going on with what is installed"
fi
[[ -x $PY ]] || die "$PY not found (Debian's python3 is needed for the helpers)"
for tool in cmake taskset h2load ss; do
  command -v "$tool" >/dev/null || die "$tool not found: run 'bash scripts/setup.sh bench' as root"
done
taskset -c 1 true 2>/dev/null || die "CPU 1 is not available: these runs need two cores (server on 0, h2load on 1)"

declare -A PRESENT=() MISSING=()
PRESENT[spindle]=1
if command -v h2o >/dev/null; then PRESENT[h2o]=1; else MISSING[h2o]="h2o is not installed (apt-get install h2o)"; fi
if command -v nghttpd >/dev/null; then PRESENT[nghttpd]=1; else MISSING[nghttpd]="nghttpd is not installed (apt-get install nghttp2-server)"; fi
if command -v nginx >/dev/null; then PRESENT[nginx]=1; else MISSING[nginx]="nginx is not installed (apt-get install nginx-light)"; fi
for s in h2o nghttpd nginx; do
  [[ -n ${MISSING[$s]:-} ]] && say "e2e: peer missing: ${MISSING[$s]}; its rows say 'missing'"
done
command -v gnuplot >/dev/null || say "e2e: gnuplot missing (apt-get install gnuplot-nox): no chart"
SERVERS=()
for s in spindle h2o nghttpd nginx; do [[ -n ${PRESENT[$s]:-} ]] && SERVERS+=("$s"); done
# file_row ID: does scenario ID serve files from every server (spindle-static)?
file_row() { [[ $1 == file-* || $1 == 1mib-file ]]; }
# servers_for ID: the servers of a scenario (nginx only in the file rows).
servers_for() {
  local s
  for s in "${SERVERS[@]}"; do
    [[ $s == nginx ]] && ! file_row "$1" && continue
    printf '%s\n' "$s"
  done
}

# Enough descriptors for 1000 idle connections (the servers inherit this).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -n) >= 2 * IDLE_CONNS + 100)) || say "e2e: open-file limit $(ulimit -n) is low for $((2 * IDLE_CONNS)) idle connections"

WORK=$(mktemp -d /tmp/spindle-e2e.XXXXXX)
mkdir -p "$WORK/logs" "$WORK/runs" "$WORK/idle" "$RESULTS"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

# ---------------------------------------------------------------------------
# Build

SPINDLE=$BUILD/apps/hello/spindle-hello
STATIC=$BUILD/apps/static/spindle-static # the file scenarios: files from $DOCROOT
MICRO_BIN=$BUILD/bench/spindle-micro
if ((BUILD_IT)); then
  say "== building spindle (CMake Release) in build-bench/"
  if ! { cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSPINDLE_TESTS=OFF &&
         cmake --build "$BUILD" -j"$(nproc)"; } >"$WORK/logs/build.log" 2>&1; then
    tail -n 30 "$WORK/logs/build.log" >&2
    die "build failed (log above)"
  fi
fi
[[ -x $SPINDLE ]] || die "$SPINDLE is missing (drop --no-build)"
[[ -x $STATIC ]] || say "e2e: $STATIC is missing: the file rows have no spindle run"

# The HTTP/1.1 rows (wrk): bench/h1.sh, also run at the end of a full run.
H1_ARGS=(--build "$BUILD" --out "$RESULTS/$STAMP-h1.md")
((QUICK)) && H1_ARGS+=(--quick)
if ((H1_ONLY)); then
  say "== HTTP/1.1 rows: bash bench/h1.sh ${H1_ARGS[*]}"
  bash "$BENCH/h1.sh" "${H1_ARGS[@]}"
  exit 0
fi
# The spindle-load rows (issue 16): bench/load/e2e_rows.py, also run at the
# end of a full run.
LOAD_ARGS=(--build "$BUILD" --out "$RESULTS/$STAMP-load.md" --json "$RESULTS/$STAMP-load.json")
((QUICK)) && LOAD_ARGS+=(--quick)
[[ -n $REPS ]] && LOAD_ARGS+=(--reps "$REPS")
if ((LOAD_ONLY)); then
  say "== spindle-load rows: bench/load/e2e_rows.py ${LOAD_ARGS[*]}"
  "$PY" "$BENCH/load/e2e_rows.py" "${LOAD_ARGS[@]}"
  exit 0
fi

# ---------------------------------------------------------------------------
# Content: the same bytes from every server

DOCROOT=$WORK/docroot
mkdir -p "$DOCROOT"
printf 'Hello, World!' >"$DOCROOT/index.html"
"$PY" -c 'import sys; sys.stdout.buffer.write(bytes((i * 31 + 7) & 0xff for i in range(1 << 20)))' >"$DOCROOT/1m"
# The small files of the file rows: 13 bytes, 4 KiB, 64 KiB (prefixes of 1m).
printf 'Hello, World!' >"$DOCROOT/f13"
head -c 4096 "$DOCROOT/1m" >"$DOCROOT/f4k"
head -c 65536 "$DOCROOT/1m" >"$DOCROOT/f64k"

# TLS: one self-signed certificate for every server in this run (ECDSA
# P-256: cheap signatures, supported by all three), and the same client offer
# for every server.
CERT=$WORK/tls/cert.pem
KEY=$WORK/tls/key.pem
TLS_CERT_DESC="self-signed ECDSA P-256 certificate made for the run (openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256)"
TLS_WANT="TLSv1.3 TLS_AES_128_GCM_SHA256"
TLS_H2LOAD_ARGS="--tls13-ciphers=TLS_AES_128_GCM_SHA256 --ciphers=ECDHE-ECDSA-AES128-GCM-SHA256 --groups=P-256"
TLS_MISSING=
mkdir -p "$WORK/tls"
if ! command -v openssl >/dev/null; then
  TLS_MISSING="openssl is not installed (apt-get install openssl): no certificate"
elif ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
       -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
       -keyout "$KEY" -out "$CERT" >"$WORK/logs/openssl.log" 2>&1; then
  TLS_MISSING="openssl could not make a certificate ($(tail -n 1 "$WORK/logs/openssl.log"))"
fi
[[ -n $TLS_MISSING ]] && say "e2e: $TLS_MISSING; the TLS rows are not run"

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_listen() { # port pid -> 0 when something listens on port
  local port=$1 pid=$2 i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  return 1
}

# start_server NAME LOG -> SRV_PID, SRV_PORT, SRV_CMD.  SPINDLE_APP=static
# runs spindle-static on $DOCROOT instead of spindle-hello (h2o and nghttpd
# always serve $DOCROOT).  SRV_TLS=1: SRV_PORT is the TLS port ($CERT,
# $KEY); spindle-hello keeps its h2c port too, unused.
SPINDLE_APP=hello
SPINDLE_EXTRA= # more spindle options (the two spin-latency rows)
SRV_TLS=0
NGINX_SENDFILE=on
start_server() {
  local name=$1 log=$2 i scheme=http
  SRV_PORT= SRV_PID=
  ((SRV_TLS)) && scheme=https
  case $name in
    spindle)
      if [[ $SPINDLE_APP == static ]]; then
        [[ -x $STATIC ]] || { say "e2e: $STATIC is missing"; return 1; }
        SRV_CMD="taskset -c 0 $STATIC --root $DOCROOT --shards 1 --port 0 --log-level 0 --set max-requests=0"
      else
        SRV_CMD="taskset -c 0 $SPINDLE --shards 1 --port 0 --log-level 0 --set max-requests=0"
      fi
      SRV_CMD+=$SPINDLE_EXTRA
      ((SRV_TLS)) && SRV_CMD+=" --tls-port 0 --cert $CERT --key $KEY"
      setsid $SRV_CMD >"$log" 2>&1 &
      SRV_PID=$!
      STARTED+=("$SRV_PID")
      for ((i = 0; i < 100; i++)); do
        SRV_PORT=$(sed -n "s|^listening on $scheme://127\\.0\\.0\\.1:\\([0-9]*\\) .*|\\1|p" "$log" | head -n 1)
        [[ -n $SRV_PORT ]] && break
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
      done
      ;;
    h2o)
      SRV_PORT=$(free_port)
      local conf=$WORK/h2o-$SRV_PORT.conf
      cat >"$conf" <<EOF
user: root
num-threads: 1
max-connections: 10000
pid-file: $WORK/h2o-$SRV_PORT.pid
error-log: $WORK/logs/h2o-$SRV_PORT.err
http2-idle-timeout: 3600
listen:
  host: 127.0.0.1
  port: $SRV_PORT
EOF
      # TLS: the certificate goes in the listen block (h2o 2.2.5); no OCSP
      # stapling, whose fetch-ocsp-response helper would run in the group.
      if ((SRV_TLS)); then
        cat >>"$conf" <<EOF
  ssl:
    certificate-file: $CERT
    key-file: $KEY
    ocsp-update-interval: 0
EOF
      fi
      cat >>"$conf" <<EOF
hosts:
  default:
    paths:
      /:
        file.dir: $DOCROOT
EOF
      SRV_CMD="taskset -c 0 h2o -c $conf"
      setsid $SRV_CMD >"$log" 2>&1 &
      SRV_PID=$!
      STARTED+=("$SRV_PID")
      wait_listen "$SRV_PORT" "$SRV_PID" || SRV_PORT=
      ;;
    nginx)
      # Its usual static-file setup: sendfile, open_file_cache (revalidated
      # every second, like spindle-static's default), no access log; h2c
      # with prior knowledge (listen ... http2 without ssl); one worker.
      # $NGINX_SENDFILE: "on" (its usual setting) except in the latency
      # row: with sendfile each small response waited ~44 ms here (the
      # frame header is written, the body sendfile()d: Nagle against the
      # client's delayed ACK); with it off, ~0.3 ms.
      ((SRV_TLS)) && { say "e2e: nginx runs only in the h2c file rows"; return 1; }
      SRV_PORT=$(free_port)
      local nconf=$WORK/nginx-$SRV_PORT.conf
      mkdir -p "$WORK/nginx-$SRV_PORT"
      # user root: the scratch directory is mode 0700 (h2o runs as root too).
      cat >"$nconf" <<EOF
user root;
worker_processes 1;
daemon off;
pid $WORK/nginx-$SRV_PORT/nginx.pid;
error_log $WORK/logs/nginx-$SRV_PORT.err;
events { worker_connections 10000; }
http {
  access_log off;
  default_type application/octet-stream;
  sendfile $NGINX_SENDFILE;
  tcp_nopush on;
  open_file_cache max=1000 inactive=60s;
  open_file_cache_valid 1s;
  keepalive_requests 100000000;
  http2_max_requests 100000000;
  client_body_temp_path $WORK/nginx-$SRV_PORT;
  server {
    listen 127.0.0.1:$SRV_PORT http2;
    root $DOCROOT;
  }
}
EOF
      SRV_CMD="taskset -c 0 nginx -p $WORK/nginx-$SRV_PORT -c $nconf -e $WORK/logs/nginx-$SRV_PORT.err"
      setsid $SRV_CMD >"$log" 2>&1 &
      SRV_PID=$!
      STARTED+=("$SRV_PID")
      wait_listen "$SRV_PORT" "$SRV_PID" || SRV_PORT=
      ;;
    nghttpd)
      SRV_PORT=$(free_port)
      if ((SRV_TLS)); then
        SRV_CMD="taskset -c 0 nghttpd -n 1 -d $DOCROOT $SRV_PORT $KEY $CERT"
      else
        SRV_CMD="taskset -c 0 nghttpd --no-tls -n 1 -d $DOCROOT $SRV_PORT"
      fi
      setsid $SRV_CMD >"$log" 2>&1 &
      SRV_PID=$!
      STARTED+=("$SRV_PID")
      wait_listen "$SRV_PORT" "$SRV_PID" || SRV_PORT=
      ;;
  esac
  if [[ -z $SRV_PORT ]]; then
    say "e2e: $name did not start listening: $SRV_CMD"
    tail -n 5 "$log" | sed 's/^/    /'
    stop_server
    return 1
  fi
}

stop_server() {
  [[ -n ${SRV_PID:-} ]] || return 0
  stop_group "$SRV_PID"
  forget "$SRV_PID"
  SRV_PID=
}

# ---------------------------------------------------------------------------
# Content check: every server must send the same bodies

declare -A CHECK=()
want_1m=$(sha256sum <"$DOCROOT/1m" | cut -d' ' -f1)
# check_content KEY SERVER: start SERVER (SPINDLE_APP, SRV_TLS as set), fetch
# / and /1m over HTTP/2 (h2c with prior knowledge, or TLS with ALPN h2) and
# set CHECK[KEY].
check_content() {
  local key=$1 s=$2 url body got_1m ver
  local -a copt=(-s --http2-prior-knowledge)
  if ! start_server "$s" "$WORK/logs/check-$key.log"; then
    CHECK[$key]="did not start"
    say "   $key: ${CHECK[$key]}"
    return 0
  fi
  url=http://127.0.0.1:$SRV_PORT
  if ((SRV_TLS)); then
    copt=(-s -k --http2)
    url=https://127.0.0.1:$SRV_PORT
  fi
  body=$(curl "${copt[@]}" --max-time 10 "$url/" || true)
  ver=$(curl "${copt[@]}" --max-time 10 -o /dev/null -w '%{http_version}' "$url/" || true)
  got_1m=$(curl "${copt[@]}" --max-time 30 "$url/1m" | sha256sum | cut -d' ' -f1)
  if [[ $body == "Hello, World!" && $got_1m == "$want_1m" && $ver == 2 ]]; then
    CHECK[$key]=ok
  else
    CHECK[$key]="mismatch: / gave ${#body} bytes over HTTP/${ver:-?}, /1m sha256 ${got_1m:0:12}"
  fi
  say "   $key: ${CHECK[$key]}"
  stop_server
}
if command -v curl >/dev/null; then
  say "== content check (curl --http2-prior-knowledge; TLS: curl --http2 -k)"
  for s in "${SERVERS[@]}"; do check_content "$s" "$s"; done
  # spindle-static serves the same two files from $DOCROOT.
  SPINDLE_APP=static
  check_content spindle-static spindle
  SPINDLE_APP=hello
  if [[ -z $TLS_MISSING ]]; then
    SRV_TLS=1
    for s in "${SERVERS[@]}"; do [[ $s == nginx ]] || check_content "$s-tls" "$s"; done
    SRV_TLS=0
  fi
else
  say "e2e: curl missing: content check skipped"
fi

# ---------------------------------------------------------------------------
# Microbenchmarks (before any server runs)

MICRO_JSON=
if ((MICRO)); then
  if [[ -x $MICRO_BIN ]]; then
    margs=(--cpu 0 --json)
    ((QUICK)) && margs+=(--quick)
    bg=$("$PY" "$REPORT" wait-quiet $((QUIET_WAIT * 3)) 15)
    say "== microbenchmarks: spindle-micro ${margs[*]} (machine ${bg}% busy before)"
    setsid "$MICRO_BIN" "${margs[@]}" >"$WORK/micro.json" 2> >(sed 's/^/   /' >&2) &
    micro_pid=$!
    STARTED+=("$micro_pid")
    set +e
    wait "$micro_pid"
    mrc=$?
    set -e
    forget "$micro_pid"
    if ((mrc == 0)); then
      MICRO_JSON=$WORK/micro.json
    else
      say "e2e: spindle-micro failed (exit $mrc); no micro table"
    fi
  else
    say "e2e: $MICRO_BIN not built; no micro table"
  fi
fi

# ---------------------------------------------------------------------------
# Scenarios: id|label|short|path|n|c|m|tls.  In the file rows (file_row)
# spindle is spindle-static serving $DOCROOT (small files from its content
# cache, 1m mmap'd and sent by reference), so every server sends the same
# file; in the others spindle-hello answers from memory (labelled so).
# tls=1: h2load over https to each server's TLS port ($TLS_H2LOAD_ARGS).

SCENARIOS=(
  "small-mux|small responses, multiplexed (spindle-hello from memory, peers from a file)|small x64 (mem)|/|400000|16|64"
  "many-conns|many connections (spindle-hello from memory, peers from a file)|256 conns (mem)|/|200000|256|8"
  "1mib|1 MiB bodies (spindle-hello from memory, peers from a file)|1 MiB (mem)|/1m|2000|8|4"
  "file-13b|13 B file, multiplexed (every server from the same file)|file 13 B|/f13|400000|16|64"
  "file-4k|4 KiB file, multiplexed (every server from the same file)|file 4 KiB|/f4k|200000|16|64"
  "file-64k|64 KiB file, multiplexed (every server from the same file)|file 64 KiB|/f64k|40000|16|16"
  "1mib-file|1 MiB file (every server from the same file)|file 1 MiB|/1m|2000|8|4"
  "latency|single-stream latency (spindle-hello from memory, peers from a file)|latency (mem)|/|20000|1|1"
  "spin-latency|single-stream latency, spindle in the low-latency mode (--ring-spin-us 200)|latency spin (mem)|/|20000|1|1"
  "file-latency|single-stream latency, 13 B file (every server from the same file)|file latency|/f13|20000|1|1"
  "file-spin-latency|single-stream latency, 13 B file, spindle in the low-latency mode (--ring-spin-us 200)|file latency spin|/f13|20000|1|1"
  "tls-small-mux|TLS: small responses, multiplexed (spindle-hello from memory)|TLS small (mem)|/|400000|16|64|1"
  "tls-1mib|TLS: 1 MiB bodies (spindle-hello from memory)|TLS 1 MiB (mem)|/1m|2000|8|4|1"
)
if [[ -n $ONLY ]]; then
  kept=()
  for sc in "${SCENARIOS[@]}"; do [[ $ONLY == *,"${sc%%|*}",* ]] && kept+=("$sc"); done
  ((${#kept[@]})) || die "--only: no scenario matches '${ONLY:1:-1}'"
  SCENARIOS=("${kept[@]}")
fi

json_esc() { local x=${1//\\/\\\\}; x=${x//\"/\\\"}; printf '%s' "${x//$'\n'/ }"; }

{
  printf '{"reps": %d, "servers_present": [' "$REPS"
  sep=
  for s in "${SERVERS[@]}"; do printf '%s"%s"' "$sep" "$s"; sep=,; done
  printf '], "missing": {'
  sep=
  for s in "${!MISSING[@]}"; do printf '%s"%s": "%s"' "$sep" "$s" "${MISSING[$s]}"; sep=,; done
  printf '}, "content_checks": {'
  sep=
  for s in "${!CHECK[@]}"; do printf '%s"%s": "%s"' "$sep" "$s" "${CHECK[$s]}"; sep=,; done
  printf '}, "scenarios": ['
  sep=
  for sc in "${SCENARIOS[@]}"; do
    IFS='|' read -r id label short path n c m tls <<<"$sc"
    n=$((n / DIV))
    printf '%s{"id": "%s", "label": "%s", "short": "%s", "path": "%s", "n": %d, "c": %d, "m": %d, "tls": %s, "args": "-n %d -c %d -m %d %s"}' \
      "$sep" "$id" "$label" "$short" "$path" "$n" "$c" "$m" "$([[ -n $tls ]] && echo true || echo false)" \
      "$n" "$c" "$m" "$path"
    sep=,
  done
  printf '], "tls": {"cert": "%s", "h2load_args": "%s", "want": "%s", "missing": "%s"}}\n' \
    "$(json_esc "$TLS_CERT_DESC")" "$TLS_H2LOAD_ARGS" "$TLS_WANT" "$(json_esc "$TLS_MISSING")"
} >"$WORK/scenarios.json"

# One attempt of one run in $1 (a fresh directory); its summary line goes to
# $1/line.txt.  Runs in this shell (not in $(...)), so that the EXIT trap
# knows the server it starts.
run_attempt() {
  local dir=$1 s=$2 id=$3 rep=$4 path=$5 n=$6 c=$7 m=$8 attempt=$9
  mkdir -p "$dir"
  if ! start_server "$s" "$dir/server.log"; then
    echo "did not start" >"$dir/line.txt"
    return 1
  fi
  local bg cmd rc alive=1 exit_status=
  bg=$("$PY" "$REPORT" wait-quiet "$QUIET_WAIT" 15)
  if ((SRV_TLS)); then
    cmd="taskset -c 1 h2load -t 1 -n $n -c $c -m $m $TLS_H2LOAD_ARGS --log-file=$dir/h2load.log https://127.0.0.1:$SRV_PORT$path"
  else
    cmd="taskset -c 1 h2load -t 1 -n $n -c $c -m $m --log-file=$dir/h2load.log http://127.0.0.1:$SRV_PORT$path"
  fi
  "$PY" "$REPORT" sample "$SRV_PID" >"$dir/before.json"
  # In the background with wait, so that a signal to this script is handled
  # at once (bash runs traps only between foreground commands); in its own
  # process group, so that cleanup stops h2load too.
  setsid "$PY" "$REPORT" exec "$dir/client.json" "$H2LOAD_TIMEOUT" -- $cmd >"$dir/h2load.out" 2>&1 &
  local client=$!
  STARTED+=("$client")
  set +e
  wait "$client"
  rc=$?
  set -e
  forget "$client"
  "$PY" "$REPORT" sample "$SRV_PID" >"$dir/after.json"
  if ! kill -0 "$SRV_PID" 2>/dev/null; then
    alive=0
    set +e
    wait "$SRV_PID"
    exit_status=$?
    set -e
  fi
  {
    echo "server=$s"
    echo "scenario=$id"
    echo "rep=$rep"
    echo "attempt=$attempt"
    echo "path=$path"
    echo "n=$n"
    echo "c=$c"
    echo "m=$m"
    echo "cmd=$cmd"
    echo "tls=$SRV_TLS"
    if ((SRV_TLS)); then echo "tls_want=$TLS_WANT"; fi
    echo "server_cmd=$SRV_CMD"
    echo "h2load_rc=$rc"
    echo "server_alive=$alive"
    echo "server_exit=$exit_status"
    echo "bg_busy_pct=$bg"
  } >"$dir/meta.env"
  if ((!alive)); then
    say "e2e: SERVER DIED (exit status $exit_status) during: $cmd" >&2
    say "     server: $SRV_CMD" >&2
    tail -n 5 "$dir/server.log" | sed 's/^/     /' >&2
  fi
  ((rc == 124)) && say "e2e: h2load timed out after ${H2LOAD_TIMEOUT}s: $cmd" >&2
  stop_server
  "$PY" "$REPORT" run "$dir" >"$dir/line.txt"
}

nscen=0 total=0
for sc in "${SCENARIOS[@]}"; do
  IFS='|' read -r id label short path n c m tls <<<"$sc"
  [[ -n $tls && -n $TLS_MISSING ]] && continue
  nscen=$((nscen + 1))
  total=$((total + REPS * $(servers_for "$id" | wc -l)))
done
k=0
say "== load runs: $nscen scenarios x $REPS rep(s) x up to ${#SERVERS[@]} servers (${SERVERS[*]}; nginx in the file rows only);"
if ((RETRIES)); then
  say "   a run is repeated (up to $RETRIES more times, $RETRY_BUDGET retries in all) when other processes used over $NOISE_MAX% of either core"
fi
for sc in "${SCENARIOS[@]}"; do
  IFS='|' read -r id label short path n c m tls <<<"$sc"
  n=$((n / DIV))
  SPINDLE_APP=hello
  file_row "$id" && SPINDLE_APP=static
  SPINDLE_EXTRA=
  [[ $id == *spin-latency ]] && SPINDLE_EXTRA=" --ring-spin-us 200"
  NGINX_SENDFILE=on
  [[ $id == *latency ]] && NGINX_SENDFILE=off
  mapfile -t SC_SERVERS < <(servers_for "$id")
  SRV_TLS=0
  if [[ -n $tls ]]; then
    if [[ -n $TLS_MISSING ]]; then
      say "   $id: not run ($TLS_MISSING)"
      continue
    fi
    SRV_TLS=1
  fi
  for ((rep = 1; rep <= REPS; rep++)); do
    for s in "${SC_SERVERS[@]}"; do
      k=$((k + 1))
      best= best_noise=
      for ((attempt = 1; attempt <= RETRIES + 1; attempt++)); do
        adir=$WORK/attempts/$id/$rep/$s/$attempt
        prefix=$(printf '[%2d/%d] %-13s rep %d/%d %-8s' "$k" "$total" "$id" "$rep" "$REPS" "$s")
        ((attempt > 1)) && prefix+=" (retry $((attempt - 1)))"
        if ! run_attempt "$adir" "$s" "$id" "$rep" "$path" "$n" "$c" "$m" "$attempt"; then
          say "$prefix $(cat "$adir/line.txt")"
          break
        fi
        say "$prefix $(cat "$adir/line.txt")"
        noise=$("$PY" "$REPORT" noise "$adir")
        if [[ -z $best ]] || ((noise < best_noise)); then best=$adir best_noise=$noise; fi
        if ((noise <= NOISE_MAX || attempt > RETRIES)); then break; fi
        if ((RETRY_BUDGET == 0)); then
          say "$prefix retry budget spent: keeping the least disturbed attempt"
          break
        fi
        RETRY_BUDGET=$((RETRY_BUDGET - 1))
      done
      if [[ -n $best ]]; then
        mkdir -p "$WORK/runs/$id/$rep"
        cp -r "$best" "$WORK/runs/$id/$rep/$s"
      fi
    done
  done
done

SPINDLE_APP=hello
SPINDLE_EXTRA=
SRV_TLS=0

# ---------------------------------------------------------------------------
# Memory per idle connection

((${#ONLY})) || say "== idle connections: 2 x $IDLE_CONNS per server (not nginx)"
for s in "${SERVERS[@]}"; do
  [[ -z $ONLY && $s != nginx ]] || continue
  if ! start_server "$s" "$WORK/logs/idle-$s.log"; then
    echo '{"error": "server did not start"}' >"$WORK/idle/$s.json"
    continue
  fi
  if ! "$PY" "$BENCH/idle_conns.py" --port "$SRV_PORT" --pgid "$SRV_PID" --conns "$IDLE_CONNS" \
      >"$WORK/idle/$s.json" 2>"$WORK/logs/idle-$s.err"; then
    say "   $s: not every connection stayed open (see the JSON)"
  fi
  [[ -s $WORK/idle/$s.json ]] || echo '{"error": "idle_conns.py failed"}' >"$WORK/idle/$s.json"
  say "   $s: $("$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
k = d.get("kib_per_conn")
print(d.get("error") or "%.2f KiB/conn over the second 1000, %.2f over the first (%d/%d alive)" % (
    k if k is not None else float("nan"), d.get("kib_per_conn_cold") or float("nan"),
    d.get("conns_alive", 0), d.get("conns_requested", 0)))' "$WORK/idle/$s.json" 2>/dev/null || echo unreadable)"
  stop_server
done

# Memory per idle TLS connection: the same, over TLS 1.3 with ALPN h2 (the
# run's certificate); judged on anonymous RSS (RssAnon), as issue 19 asks.
mkdir -p "$WORK/idle-tls"
if ((${#ONLY})); then
  : # --only: the scenarios named, no idle-connection runs
elif [[ -z $TLS_MISSING ]]; then
  say "== idle TLS connections: 2 x $IDLE_TLS_CONNS per server (TLS 1.3, ALPN h2)"
  SRV_TLS=1
  for s in "${SERVERS[@]}"; do
    if ! start_server "$s" "$WORK/logs/idle-tls-$s.log"; then
      echo '{"error": "server did not start"}' >"$WORK/idle-tls/$s.json"
      continue
    fi
    if ! "$PY" "$BENCH/idle_conns.py" --tls --port "$SRV_PORT" --pgid "$SRV_PID" \
        --conns "$IDLE_TLS_CONNS" >"$WORK/idle-tls/$s.json" 2>"$WORK/logs/idle-tls-$s.err"; then
      say "   $s: not every TLS connection stayed open (see the JSON)"
    fi
    [[ -s $WORK/idle-tls/$s.json ]] || echo '{"error": "idle_conns.py failed"}' >"$WORK/idle-tls/$s.json"
    say "   $s: $("$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
k = d.get("anon_kib_per_conn")
print(d.get("error") or "%.2f KiB anonymous/conn over the second %d, %.2f over the first (%d/%d alive)" % (
    k if k is not None else float("nan"), d.get("conns_requested", 0) // 2,
    d.get("anon_kib_per_conn_cold") or float("nan"),
    d.get("conns_alive", 0), d.get("conns_requested", 0)))' "$WORK/idle-tls/$s.json" 2>/dev/null || echo unreadable)"
    stop_server
  done
  SRV_TLS=0
else
  say "== idle TLS connections: not run ($TLS_MISSING)"
fi

# ---------------------------------------------------------------------------
# Report

rargs=("$WORK" --root "$ROOT" --results-dir "$RESULTS" --md "$BENCH/RESULTS.md"
       --stamp "$STAMP" --command "$COMMAND" --spindle "$SPINDLE" --build "$BUILD")
[[ -n $MICRO_JSON ]] && rargs+=(--micro "$MICRO_JSON")
[[ -n $ONLY ]] && rargs+=(--only)
((QUICK)) && rargs+=(--quick)
"$PY" "$REPORT" report "${rargs[@]}"

# HTTP/1.1 rows (wrk), on the same page: appended to RESULTS.md.
if [[ -z $ONLY ]]; then
  say "== HTTP/1.1 rows: bash bench/h1.sh ${H1_ARGS[*]}"
  if bash "$BENCH/h1.sh" "${H1_ARGS[@]}" >/dev/null; then
    { printf '\n## HTTP/1.1 (wrk, bench/h1.sh)\n\n'; cat "$RESULTS/$STAMP-h1.md"; } >>"$BENCH/RESULTS.md"
  else
    say "e2e: bench/h1.sh failed; no HTTP/1.1 rows"
  fi
  say "== spindle-load rows: bench/load/e2e_rows.py ${LOAD_ARGS[*]}"
  if "$PY" "$BENCH/load/e2e_rows.py" "${LOAD_ARGS[@]}" >/dev/null; then
    { printf '\n## spindle-load as the client (bench/load/e2e_rows.py)\n\n'; cat "$RESULTS/$STAMP-load.md"; } >>"$BENCH/RESULTS.md"
  else
    say "e2e: bench/load/e2e_rows.py failed; no spindle-load rows"
  fi
fi
