#!/usr/bin/env bash
# bench/ops.sh - what the operators' view costs (issue 20): server CPU per
# request at S1-like load (h2load -c 16 -m 64 on "/", the e2e small-mux
# row) with
#   off     no access log (the library's default)
#   log     the access log on, to a file (text format)
#   json    the access log on, to a file (JSON lines)
#   nohdr   no access log, without the default date and server headers
#   base    a "before" binary (--base BIN: e.g. spindle-hello built from
#           main before this change), when given
#   h2o-off, h2o-log  (--h2o) h2o, one thread, serving a 13-byte file on
#           "/", without and with its access log (its default combined
#           format, to a file): how a trusted server's log compares
# The server runs one shard on CPU 0 (taskset), h2load on CPU 1.  CPU is
# the sum of every server thread's run time (/proc/PID/task/*/schedstat:
# the shard, the log thread, the main thread), read before and after the
# run, divided by the requests that succeeded.  The "thr" columns are the
# log thread's part of it (the thread named spindle-alog): "log" minus
# "log thr" is what the shard and the main thread took.  The variants
# alternate within each repetition and every repetition is printed: on a
# shared machine compare rows of one repetition and the spread, not one
# figure.
#
#   bash bench/ops.sh [--quick] [--reps N] [--bin BIN] [--base BIN] [--h2o] [-n N]
#   bash bench/ops.sh --ir [--quick] [--bin BIN] [--base BIN] [-n N]
#
# --ir counts instructions instead (valgrind --tool=callgrind, every thread
# of the server): after a warm-up of 2,000 requests the counters are dumped
# and zeroed, then N requests (default 20,000; --quick 2,000) run and the
# instructions of that window are divided by N.  Deterministic to ~1%
# whatever the machine's load, unlike the times; one run per variant.
#
#   --quick   20,000 requests, one repetition (proves the script runs)
#   --reps N  repetitions (default 5)
#   --bin     spindle-hello to measure (default build-bench/, else build/)
#   --base    a second binary, run as the "base" variant
#   --h2o     also run h2o without and with its access log (timed only)
#   -n N      requests per run (default 400,000)
#   --keep D  (--ir) keep each variant's callgrind dump of the counted
#             window as D/VARIANT.cg (callgrind_annotate D/log.cg)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPS=5 N=400000 BIN= BASE= IR=0 QUICK=0 N_SET=0 KEEP= H2O=0
while (($#)); do
  case $1 in
    --quick) REPS=1 N=20000 QUICK=1 ;;
    --ir) IR=1 ;;
    --reps) REPS=${2:?}; shift ;;
    --bin) BIN=${2:?}; shift ;;
    --base) BASE=${2:?}; shift ;;
    --h2o) H2O=1 ;;
    -n) N=${2:?}; N_SET=1; shift ;;
    --keep) KEEP=${2:?}; shift ;;
    -h|--help) sed -n '2,40p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ops.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z $BIN ]]; then
  BIN=$ROOT/build-bench/apps/hello/spindle-hello
  [[ -x $BIN ]] || BIN=$ROOT/build/apps/hello/spindle-hello
fi
[[ -x $BIN ]] || { echo "ops.sh: $BIN missing (build first)" >&2; exit 1; }
command -v h2load >/dev/null || { echo "ops.sh: h2load missing (scripts/setup.sh test)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/spindle-ops-bench.XXXXXX)
SRV=
cleanup() {
  [[ -n $SRV ]] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

cpu_ns() { # "ALL LOG": run time of every thread of pid $1, and of its log thread, ns
  local t ns comm sum=0 alog=0
  for t in /proc/"$1"/task/*; do
    read -r ns _ <"$t/schedstat" || continue
    read -r comm <"$t/comm" || comm=
    sum=$((sum + ns))
    [[ $comm == spindle-alog ]] && alog=$((alog + ns))
  done
  echo "$sum $alog"
}

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# measure PORT: h2load against the server $SRV, started and listening on
# PORT; prints "ns_per_request succeeded log_thread_ns_per_request"
measure() {
  local port=$1 a b out ok
  h2load -n 2000 -c 16 -m 64 "http://127.0.0.1:$port/" >/dev/null # warm-up
  a=($(cpu_ns "$SRV"))
  out=$(taskset -c 1 h2load -t 1 -n "$N" -c 16 -m 64 "http://127.0.0.1:$port/")
  sleep 0.2 # the log thread's last rounds of the run (it polls every 5 ms)
  b=($(cpu_ns "$SRV"))
  ok=$(sed -n 's/.* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
  ((ok > 0)) || ok=1
  echo "$(((b[0] - a[0]) / ok)) $ok $(((b[1] - a[1]) / ok))"
}

# run_one BINARY ARGS...: prints what measure prints
run_one() {
  local bin=$1; shift
  local port; port=$(free_port)
  taskset -c 0 "$bin" --port "$port" --shards 1 --log-level 0 --set max-requests=0 "$@" \
    >"$WORK/out" 2>"$WORK/err" &
  SRV=$!
  for _ in $(seq 100); do grep -q "listening on" "$WORK/out" 2>/dev/null && break; sleep 0.05; done
  measure "$port"
  kill "$SRV"; wait "$SRV" || true; SRV=
}

# h2o_one off|log: h2o (one worker thread, on CPU 0) serving a 13-byte
# index.html on "/"; prints what measure prints (h2o writes each log line
# from its worker thread: the log thread column is 0).
h2o_one() {
  local port; port=$(free_port)
  mkdir -p "$WORK/doc"
  printf 'hello, world\n' >"$WORK/doc/index.html"
  printf '%s\n' "user: root" "num-threads: 1" "max-connections: 10000" \
    "pid-file: $WORK/h2o.pid" "error-log: $WORK/h2o.err" "http2-idle-timeout: 3600" \
    "listen:" "  host: 127.0.0.1" "  port: $port" "hosts:" "  default:" "    paths:" \
    "      /:" "        file.dir: $WORK/doc" >"$WORK/h2o.conf"
  [[ $1 == log ]] && echo "access-log: $WORK/h2o-access.log" >>"$WORK/h2o.conf"
  taskset -c 0 h2o -c "$WORK/h2o.conf" >"$WORK/out" 2>&1 &
  SRV=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.05
  done
  measure "$port"
  kill "$SRV"; wait "$SRV" || true; SRV=
  rm -f "$WORK/h2o-access.log"
}

# ir_one VARIANT BINARY ARGS...: prints "instructions_per_request succeeded"
ir_one() {
  local var=$1 bin=$2; shift 2
  local port; port=$(free_port)
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" "$bin" --port "$port" --shards 1 \
    --log-level 0 --set max-requests=0 "$@" >"$WORK/out" 2>"$WORK/err" &
  SRV=$!
  for _ in $(seq 3000); do grep -q "listening on" "$WORK/out" 2>/dev/null && break; sleep 0.1; done
  grep -q "listening on" "$WORK/out" || {
    echo "ops.sh: the server under valgrind did not start" >&2
    kill "$SRV" 2>/dev/null # this runs in $(...): the EXIT trap does not see it
    exit 1
  }
  h2load -n 2000 -c 16 -m 64 "http://127.0.0.1:$port/" >/dev/null # warm-up
  callgrind_control -d "$SRV" >/dev/null 2>&1
  local out ok ir
  out=$(h2load -t 1 -n "$N" -c 16 -m 64 "http://127.0.0.1:$port/")
  callgrind_control -d "$SRV" >/dev/null 2>&1
  kill -INT "$SRV"; wait "$SRV" || true
  ir=$(sed -n 's/^totals: //p' "$WORK/cg.$SRV.2")
  [[ -n $KEEP ]] && cp "$WORK/cg.$SRV.2" "$KEEP/$var.cg"
  SRV=
  rm -f "$WORK"/cg.*
  ok=$(sed -n 's/.* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
  echo "$(( ir / (ok > 0 ? ok : 1) )) $ok"
}

variants=(off log json nohdr)
[[ -n $BASE ]] && variants+=(base)
if [[ $IR == 1 ]]; then
  command -v callgrind_control >/dev/null || { echo "ops.sh: valgrind missing" >&2; exit 1; }
  [[ -n $KEEP ]] && mkdir -p "$KEEP"
  [[ $N_SET == 1 ]] || { N=20000; [[ $QUICK == 1 ]] && N=2000; }
  echo "bench/ops.sh --ir: instructions per request (callgrind, all server threads), $N requests (h2load -c 16 -m 64 /) after 2,000 of warm-up"
  printf '| variant | Ir/request | / off |\n|---|---|---|\n'
  off=
  for v in "${variants[@]}"; do
    case $v in
      off) r=$(ir_one off "$BIN") ;;
      log) r=$(ir_one log "$BIN" --set access-log="$WORK/access.log") ;;
      json) r=$(ir_one json "$BIN" --set access-log="$WORK/access.json" --set access-log-format=json) ;;
      nohdr) r=$(ir_one nohdr "$BIN" --set server-header= --set date-header=0) ;;
      base) r=$(ir_one base "$BASE") ;;
    esac
    rm -f "$WORK"/access.*
    [[ -z $off ]] && off=${r%% *}
    awk -v v="$v" -v a="${r%% *}" -v b="$off" 'BEGIN { printf "| %s | %d | %.3f |\n", v, a, a / b }'
  done
  exit 0
fi
if [[ $H2O == 1 ]]; then
  command -v h2o >/dev/null || { echo "ops.sh: --h2o: h2o is not installed" >&2; exit 1; }
  variants+=(h2o-off h2o-log)
fi
echo "bench/ops.sh: $N requests per run (h2load -c 16 -m 64 /), $REPS repetition(s), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| rep |'; for v in "${variants[@]}"; do printf ' %s ns/req |' "$v"; done
printf ' log thr | json thr | log/off | json/off | nohdr/off |'
[[ $H2O == 1 ]] && printf ' h2o log/off |'
printf '\n|---|'; for _ in "${variants[@]}"; do printf -- '---|'; done
printf -- '---|---|---|---|---|'; [[ $H2O == 1 ]] && printf -- '---|'
echo
for rep in $(seq "$REPS"); do
  declare -A r=()
  for v in "${variants[@]}"; do
    case $v in
      off) r[$v]=$(run_one "$BIN") ;;
      log) r[$v]=$(run_one "$BIN" --set access-log="$WORK/access.log"); rm -f "$WORK/access.log" ;;
      json) r[$v]=$(run_one "$BIN" --set access-log="$WORK/access.json" --set access-log-format=json); rm -f "$WORK/access.json" ;;
      nohdr) r[$v]=$(run_one "$BIN" --set server-header= --set date-header=0) ;;
      base) r[$v]=$(run_one "$BASE") ;;
      h2o-off) r[$v]=$(h2o_one off) ;;
      h2o-log) r[$v]=$(h2o_one log) ;;
    esac
  done
  printf '| %d |' "$rep"
  for v in "${variants[@]}"; do printf ' %s |' "${r[$v]%% *}"; done
  for v in log json; do printf ' %s |' "${r[$v]##* }"; done
  off=${r[off]%% *}
  for v in log json nohdr; do
    awk -v a="${r[$v]%% *}" -v b="$off" 'BEGIN { printf " %.3f |", a / b }'
  done
  if [[ $H2O == 1 ]]; then
    awk -v a="${r[h2o-log]%% *}" -v b="${r[h2o-off]%% *}" 'BEGIN { printf " %.3f |", a / b }'
  fi
  echo
  unset r
done
