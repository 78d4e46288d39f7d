#!/usr/bin/env bash
# bench/tfb.sh - the TechEmpower test types of apps/tfb under h2load, against
# a private PostgreSQL 15 (scripts/pg.sh), in both modes in the same run: the
# asynchronous default (a pool of non-blocking, pipelined libpq connections on
# the shard) and --blocking (synchronous libpq on offload threads): req/s,
# p99 latency, and CPU time per request split into spindle's process and
# PostgreSQL's processes.
#
#   bash bench/tfb.sh [--quick] [--no-build] [--reps R] [--duration S]
#                     [--warmup S] [--conns C] [--streams M] [--pool N]
#                     [--segments N] [--offload-threads N] [--profile EP] [--keep]
#
#   --quick              one repetition, 3 s per endpoint after 1 s of warm-up
#                        (a smoke test of the pipeline, not a measurement)
#   --no-build           use the existing build-bench/ (default: configure and
#                        build a Release tree there, spindle-tfb only)
#   --reps R             repetitions (default 3); each measures every endpoint
#                        in both modes back to back, which mode goes first
#                        alternating from one repetition to the next
#   --duration S         measured seconds per endpoint and mode (default 10)
#   --warmup S           an unmeasured h2load run first, each time (default 2)
#   --conns C            h2load connections (default 64)
#   --streams M          concurrent streams per connection (default 8)
#   --pool N             async: PostgreSQL connections (default 4)
#   --segments N         async: pipeline segments in flight per connection
#                        (default: spindle-tfb's, 2)
#   --offload-threads N  --blocking: offload threads = PostgreSQL
#                        connections (default 8)
#   --profile EP         perf record -g the async server during EP's measured
#                        run of the first repetition (e.g. /fortunes); the
#                        report's top entries are printed at the end (the
#                        machine's noise does not distort a CPU profile)
#   --keep               keep the scratch directory (logs, h2load outputs)
#
# Both servers run side by side for the whole run, one shard each, on the
# same core; only the one under load does work.  Cores (override with
# SERVER_CPU, CLIENT_CPU, PG_CPUS): the servers on core 0 (the blocking
# one's offload threads inherit it), h2load on core 1, and PostgreSQL (the
# postmaster and every backend, which inherit its affinity) on cores 2 and up
# when the machine has them, else on core 1 with h2load.  On a 2-core machine
# the database and the load generator share a core: req/s is then bounded by
# that core, while CPU per request, read from each process's own counters,
# stays meaningful.
#
# CPU per request: utime+stime from /proc/<pid>/stat, read just before and
# just after the measured h2load run (a separate warm-up run precedes it),
# divided by the requests that run completed.  PostgreSQL's figure is the
# postmaster and all its live children plus what exited children left in the
# postmaster's cutime/cstime.  p99 comes from h2load's --log-file.
#
# Endpoints: /json (the baseline without a database), /db,
# /queries?queries=20, /fortunes, /updates?queries=20.  At the end, per
# endpoint and repetition: async req/s over blocking req/s, and each mode's
# spindle CPU per request minus its /json figure.  Everything it starts is
# stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-bench
PY=/usr/bin/python3

QUICK=0 BUILD_IT=1 REPS=3 DURATION=10 WARMUP=2 CONNS=64 STREAMS=8 POOL=4 OFFLOAD=8 KEEP=0
SEGMENTS=() PROFILE=
while (($#)); do
  case $1 in
    --quick) QUICK=1 REPS=1 DURATION=3 WARMUP=1 ;;
    --no-build) BUILD_IT=0 ;;
    --reps) REPS=${2:?--reps needs a number}; shift ;;
    --duration) DURATION=${2:?--duration needs seconds}; shift ;;
    --warmup) WARMUP=${2:?--warmup needs seconds}; shift ;;
    --conns) CONNS=${2:?--conns needs a number}; shift ;;
    --streams) STREAMS=${2:?--streams needs a number}; shift ;;
    --pool) POOL=${2:?--pool needs a number}; shift ;;
    --offload-threads) OFFLOAD=${2:?--offload-threads needs a number}; shift ;;
    --segments) SEGMENTS=(--segments "${2:?--segments needs a number}"); shift ;;
    --profile) PROFILE=${2:?--profile needs an endpoint}; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,55p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "tfb.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

NCPU=$(nproc)
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
if [[ -z ${PG_CPUS:-} ]]; then
  if ((NCPU > 2)); then PG_CPUS=2-$((NCPU - 1)); else PG_CPUS=1; fi
fi
ENDPOINTS=(/json /db "/queries?queries=20" /fortunes "/updates?queries=20")

bash "$ROOT/scripts/setup.sh" test >/dev/null
if ((BUILD_IT)); then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSPINDLE_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j"$NCPU" --target spindle-tfb >/dev/null
fi
TFB=$BUILD/apps/tfb/spindle-tfb
[[ -x $TFB ]] || { echo "tfb.sh: no $TFB (is libpq-dev installed?)" >&2; exit 1; }

SCRATCH=$(mktemp -d /tmp/tfb-bench.XXXXXX)
chmod 711 "$SCRATCH" # the postgres user reaches pg/ (scripts/pg.sh)
SRV_PIDS=()
cleanup() {
  local p
  for p in "${SRV_PIDS[@]}"; do
    if kill "$p" 2>/dev/null; then wait "$p" 2>/dev/null || true; fi
  done
  bash "$ROOT/scripts/pg.sh" stop "$SCRATCH/pg" >/dev/null 2>&1 || true
  if ((KEEP)); then echo "tfb.sh: kept $SCRATCH"; else rm -rf "$SCRATCH"; fi
}
trap cleanup EXIT

CONNINFO=$(taskset -c "$PG_CPUS" bash "$ROOT/scripts/pg.sh" start "$SCRATCH/pg")

# start_server NAME ARGS...: one shard on SERVER_CPU; sets PID_NAME, PORT_NAME.
start_server() {
  local name=$1 port= pid
  shift
  taskset -c "$SERVER_CPU" "$TFB" --db "$CONNINFO" --port 0 --shards 1 --set max-requests=0 \
    --log-level 1 "$@" >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" &
  pid=$!
  SRV_PIDS+=("$pid")
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9]*\) .*/\1/p' "$SCRATCH/$name.out" | head -n 1)
    [[ -n $port ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$SCRATCH/$name.err" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n $port ]] || { echo "tfb.sh: $name not listening" >&2; exit 1; }
  printf -v "PID_$name" %s "$pid"
  printf -v "PORT_$name" %s "$port"
}
start_server async --pool "$POOL" "${SEGMENTS[@]}"
start_server blocking --blocking --set offload-threads="$OFFLOAD"

# utime+stime (clock ticks) of one process; of PostgreSQL as a whole.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
  local t=0 p first=1
  for p in $(bash "$ROOT/scripts/pg.sh" pids "$SCRATCH/pg"); do
    if ((first)); then # the postmaster, with its exited children's time
      t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat")
      first=0
    else
      t=$((t + $(ticks "$p")))
    fi
  done
  echo "$t"
}

HZ=$(getconf CLK_TCK)
echo "spindle-tfb, 1 shard each on core $SERVER_CPU: async (pool of $POOL connections) and" \
  "--blocking ($OFFLOAD offload threads = connections); PostgreSQL 15 on core(s) $PG_CPUS;" \
  "h2load on core $CLIENT_CPU"
echo "h2load -c $CONNS -m $STREAMS, ${WARMUP} s warm-up run, then ${DURATION} s measured per" \
  "endpoint and mode, $REPS repetition(s)$( ((QUICK)) && echo ' (--quick)')"
echo "machine: $NCPU cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start" \
  "(a busy machine makes these figures noisy)"
ROWS=$SCRATCH/rows.txt
: >"$ROWS"
printf '%-3s %-8s %-20s %9s %9s %14s %15s %8s %6s\n' rep mode endpoint req/s p99_ms \
  spindle_us/req postgres_us/req 2xx other

# measure REP MODE ENDPOINT: one warm-up and one measured h2load run.
measure() {
  local rep=$1 mode=$2 ep=$3 pid port name out log s0 p0 s1 p1
  pid=PID_$mode port=PORT_$mode
  pid=${!pid} port=${!port}
  name=$mode$(echo "$ep" | tr -c 'a-z0-9\n' '_')_$rep
  out=$SCRATCH/h2load_$name.txt log=$SCRATCH/h2load_$name.log
  taskset -c "$CLIENT_CPU" h2load -t 1 -c "$CONNS" -m "$STREAMS" -D "$WARMUP" \
    "http://127.0.0.1:$port$ep" >"$SCRATCH/warmup_$name.txt" 2>&1 || true
  local perf=
  if [[ $ep == "$PROFILE" && $mode == async && $rep == 1 ]]; then
    perf record -q -g -F 999 -p "$pid" -o "$SCRATCH/perf.data" 2>/dev/null &
    perf=$!
  fi
  s0=$(ticks "$pid") p0=$(pg_ticks)
  taskset -c "$CLIENT_CPU" h2load -t 1 -c "$CONNS" -m "$STREAMS" -D "$DURATION" \
    --log-file="$log" "http://127.0.0.1:$port$ep" >"$out" 2>&1 || true
  s1=$(ticks "$pid") p1=$(pg_ticks)
  if [[ -n $perf ]]; then
    kill -INT "$perf" 2>/dev/null || true
    wait "$perf" 2>/dev/null || true
  fi
  "$PY" "$ROOT/bench/tfb_row.py" "$out" "$log" $((s1 - s0)) $((p1 - p0)) "$HZ" "$ep" \
    "$rep" "$mode" | tee -a "$ROWS"
}

for rep in $(seq "$REPS"); do
  if ((rep % 2)); then modes=(async blocking); else modes=(blocking async); fi
  for ep in "${ENDPOINTS[@]}"; do
    for mode in "${modes[@]}"; do measure "$rep" "$mode" "$ep"; done
  done
done

echo
echo "per repetition: async req/s / blocking req/s, then spindle us/req minus /json's" \
  "(async, blocking)"
"$PY" "$ROOT/bench/tfb_row.py" --summary "$ROWS"
if [[ -n $PROFILE && -s $SCRATCH/perf.data ]]; then
  echo
  echo "perf profile of the async server during $PROFILE (self time, top entries):"
  perf report -i "$SCRATCH/perf.data" --no-children --stdio -g none --percent-limit 1 2>/dev/null |
    grep -v '^#' | grep -v '^$' | head -n 25
fi
for m in async blocking; do
  if [[ -s $SCRATCH/$m.err ]]; then
    echo "$m server log (warnings and errors):"
    tail -n 5 "$SCRATCH/$m.err"
  fi
done
