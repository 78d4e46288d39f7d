#!/usr/bin/env bash
# bench/io_profile.sh - load-independent per-request counts for one server
# under one h2load row: syscalls, io_uring_enter calls, SQEs and CQEs by op,
# task-work runs, context switches (docs/io-profile.md reads them).
#
#   bash bench/io_profile.sh [--server spindle|h2o] [--bin PATH] [--row many|latency|h1]
#                            [-n N] [--record] [--quick] [--spin US] [--set K=V]
#
# The server runs on core 0 (spindle: --shards 1 --set max-requests=0), h2load
# on core 1. perf stat attaches to the server for exactly the h2load run, so
# the counts cover connection setup plus N requests; per-request = count / N.
# --record adds a tracepoint record (submit_req/complete) and prints SQEs by
# opcode and CQEs by spindle op (low byte of user_data) and flags.
# --spin US runs spindle in the low-latency mode (--ring-spin-us US); --set K=V
# passes a server option to spindle (repeatable, e.g. --set send-nocqe=1).
# Rows: many = h2load -c 256 -m 8; latency = -c 1 -m 1; h1 = HTTP/1.1
# keep-alive, h2load --h1 -c 64 -m 1 (one request in flight per connection).
# Counts do not depend on machine load; times (task-clock) do.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVER=spindle BIN=$ROOT/build-bench/apps/hello/spindle-hello ROW=many N= RECORD=0 QUICK=0 SPIN=() H1=()
while (($#)); do
  case $1 in
    --server) SERVER=$2; shift ;;
    --bin) BIN=$2; shift ;;
    --row) ROW=$2; shift ;;
    -n) N=$2; shift ;;
    --record) RECORD=1 ;;
    --quick) QUICK=1 ;;
    --spin) SPIN+=(--ring-spin-us "$2"); shift ;;
    --set) SPIN+=(--set "$2"); shift ;;
    *) echo "io_profile: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
case $ROW in
  many) C=256 M=8; : "${N:=200000}" ;;
  latency) C=1 M=1; : "${N:=20000}" ;;
  h1) C=64 M=1 H1=(--h1); : "${N:=200000}" ;;
  *) echo "io_profile: --row many|latency|h1" >&2; exit 2 ;;
esac
((QUICK)) && N=$((N / 10))
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/spindle-ioprof.XXXXXX)
SRV=
cleanup() {
  [[ -n $SRV ]] && kill -TERM -- "-$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
printf 'Hello, World!' >"$WORK/index.html"

case $SERVER in
  spindle)
    setsid taskset -c 0 "$BIN" --shards 1 --port 0 --log-level 0 --set max-requests=0 \
      "${SPIN[@]}" >"$WORK/srv.log" 2>&1 &
    SRV=$!
    for ((i = 0; i < 100; i++)); do
      PORT=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$WORK/srv.log" | head -n 1)
      [[ -n $PORT ]] && break
      sleep 0.05
    done
    ;;
  h2o)
    PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$WORK/h2o.conf" <<EOF
user: root
num-threads: 1
max-connections: 10000
error-log: $WORK/h2o.err
http2-idle-timeout: 3600
listen:
  host: 127.0.0.1
  port: $PORT
hosts:
  default:
    paths:
      /:
        file.dir: $WORK
EOF
    setsid taskset -c 0 h2o -c "$WORK/h2o.conf" >"$WORK/srv.log" 2>&1 &
    SRV=$!
    for ((i = 0; i < 100; i++)); do
      ss -Hltn "sport = :$PORT" | grep -q . && break
      sleep 0.1
    done
    ;;
  *) echo "io_profile: --server spindle|h2o" >&2; exit 2 ;;
esac
[[ -n ${PORT:-} ]] || { cat "$WORK/srv.log" >&2; echo "io_profile: server did not start" >&2; exit 1; }
# The process whose threads serve (h2o: the worker is a thread of the master).
PID=$(ss -Hltnp "sport = :$PORT" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1)
[[ -n $PID ]] || PID=$SRV
URL=http://127.0.0.1:$PORT/index.html
[[ $SERVER == spindle ]] && URL=http://127.0.0.1:$PORT/
taskset -c 1 h2load -t 1 "${H1[@]}" -n 2000 -c 16 -m 8 "$URL" >/dev/null # warm-up

EV='syscalls:sys_enter_io_uring_enter,raw_syscalls:sys_enter,io_uring:io_uring_submit_req,io_uring:io_uring_complete,io_uring:io_uring_local_work_run,io_uring:io_uring_task_add,io_uring:io_uring_cqring_wait,context-switches,cpu-migrations,task-clock'
perf stat -x, -e "$EV" -p "$PID" -o "$WORK/stat.csv" &
PERF=$!
if ((RECORD)); then
  perf record -q -m 1024 -e io_uring:io_uring_submit_req,io_uring:io_uring_complete -p "$PID" \
    -o "$WORK/trace.data" 2>/dev/null &
  REC=$!
fi
sleep 0.5
taskset -c 1 h2load -t 1 "${H1[@]}" -n "$N" -c "$C" -m "$M" "$URL" >"$WORK/h2load.out"
kill -INT "$PERF"
wait "$PERF" || true
if ((RECORD)); then kill -INT "$REC"; wait "$REC" || true; fi
grep -E '^(finished in|requests:|time for request:)' "$WORK/h2load.out"
echo "server=$SERVER row=$ROW n=$N c=$C m=$M ${H1[*]} (per request = count / $N)"
$PY - "$WORK/stat.csv" "$N" <<'EOF'
import sys
n = int(sys.argv[2])
for line in open(sys.argv[1]):
    f = line.strip().split(',')
    if len(f) < 3 or line.startswith('#') or not f[0].replace('.', '').isdigit():
        continue
    v = float(f[0]); ev = f[2]
    unit = 'us' if ev == 'task-clock' else ''
    if ev == 'task-clock':
        print(f"  {ev:40s} {v:14.0f} ms   {v * 1000 / n:8.3f} us/req (noisy)")
    else:
        print(f"  {ev:40s} {v:14.0f}      {v / n:8.3f} /req")
EOF
if ((RECORD)); then
  perf script -i "$WORK/trace.data" -F event,trace 2>/dev/null | $PY -c '
import sys, re, collections
n = int(sys.argv[1]); names = {1: "WAKE", 64: "ACCEPT", 65: "RECV", 66: "SEND", 67: "CANCEL", 68: "ACCEPT_TLS", 69: "SEND_NOCQE"}
sq = collections.Counter(); cq = collections.Counter(); res = collections.defaultdict(int)
for line in sys.stdin:
    m = re.search(r"user_data 0x([0-9a-f]+), opcode (\w+)", line)
    if m and "submit_req" in line:
        sq[m.group(2)] += 1; continue
    m = re.search(r"user_data 0x([0-9a-f]+), result (-?\d+), cflags 0x([0-9a-f]+)", line)
    if m:
        op = names.get(int(m.group(1), 16) & 0xff, str(int(m.group(1), 16) & 0xff))
        fl = int(m.group(3), 16)
        tag = op + ("+MORE" if fl & 2 else "") + ("+NOTIF" if fl & 8 else "")
        cq[tag] += 1; res[tag] += max(int(m.group(2)), 0)
print("  SQEs by opcode:")
for k, v in sq.most_common(): print(f"    {k:24s} {v:10d}  {v / n:8.4f} /req")
print("  CQEs by op (+flags), mean res:")
for k, v in cq.most_common(): print(f"    {k:24s} {v:10d}  {v / n:8.4f} /req  mean res {res[k] / v:9.1f}")
' "$N"
fi
