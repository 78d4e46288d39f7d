#!/usr/bin/env bash
# bench/tfb.sh - the TechEmpower test types of apps/tfb under h2load, against
# a private PostgreSQL 15 (scripts/pg.sh): req/s, p99 latency, and CPU time
# per request split into spindle's process and PostgreSQL's processes.
#
#   bash bench/tfb.sh [--quick] [--no-build] [--duration S] [--warmup S]
#                     [--conns C] [--streams M] [--offload-threads N] [--keep]
#
#   --quick              3 s per endpoint after 1 s of warm-up (a smoke test of
#                        the pipeline, not a measurement)
#   --no-build           use the existing build-bench/ (default: configure and
#                        build a Release tree there, spindle-tfb only)
#   --duration S         measured seconds per endpoint (default 10)
#   --warmup S           an unmeasured h2load run first, per endpoint (default 2)
#   --conns C            h2load connections (default 64)
#   --streams M          concurrent streams per connection (default 8)
#   --offload-threads N  spindle-tfb's offload threads = PostgreSQL
#                        connections (default 8)
#   --keep               keep the scratch directory (logs, h2load outputs)
#
# Cores (override with SERVER_CPU, CLIENT_CPU, PG_CPUS): spindle-tfb with one
# shard on core 0 (its offload threads inherit the shard's core), h2load on
# core 1, and PostgreSQL (the postmaster and every backend, which inherit its
# affinity) on cores 2 and up when the machine has them, else on core 1 with
# h2load.  On a 2-core machine the database and the load generator share a
# core: req/s is then bounded by that core, while CPU per request, read from
# each process's own counters, stays meaningful.
#
# CPU per request: utime+stime from /proc/<pid>/stat, read just before and
# just after the measured h2load run (a separate warm-up run precedes it),
# divided by the requests that run completed.  PostgreSQL's figure is the
# postmaster and all its live children plus what exited children left in the
# postmaster's cutime/cstime.  p99 comes from h2load's --log-file.
#
# Endpoints: /json (the baseline without a database), /db,
# /queries?queries=20, /fortunes, /updates?queries=20.  Everything it starts is
# stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-bench
PY=/usr/bin/python3

QUICK=0 BUILD_IT=1 DURATION=10 WARMUP=2 CONNS=64 STREAMS=8 OFFLOAD=8 KEEP=0
while (($#)); do
  case $1 in
    --quick) QUICK=1 DURATION=3 WARMUP=1 ;;
    --no-build) BUILD_IT=0 ;;
    --duration) DURATION=${2:?--duration needs seconds}; shift ;;
    --warmup) WARMUP=${2:?--warmup needs seconds}; shift ;;
    --conns) CONNS=${2:?--conns needs a number}; shift ;;
    --streams) STREAMS=${2:?--streams needs a number}; shift ;;
    --offload-threads) OFFLOAD=${2:?--offload-threads needs a number}; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,36p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
SRV_PID=
cleanup() {
  if [[ -n $SRV_PID ]] && kill "$SRV_PID" 2>/dev/null; then
    wait "$SRV_PID" 2>/dev/null || true
  fi
  bash "$ROOT/scripts/pg.sh" stop "$SCRATCH/pg" >/dev/null 2>&1 || true
  if ((KEEP)); then echo "tfb.sh: kept $SCRATCH"; else rm -rf "$SCRATCH"; fi
}
trap cleanup EXIT

CONNINFO=$(taskset -c "$PG_CPUS" bash "$ROOT/scripts/pg.sh" start "$SCRATCH/pg")

taskset -c "$SERVER_CPU" "$TFB" --blocking --db "$CONNINFO" --port 0 --shards 1 \
  --set offload-threads="$OFFLOAD" --set max-requests=0 --log-level 1 \
  >"$SCRATCH/server.out" 2>"$SCRATCH/server.err" &
SRV_PID=$!
PORT=
for _ in $(seq 100); do
  PORT=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9]*\) .*/\1/p' "$SCRATCH/server.out" | head -n 1)
  [[ -n $PORT ]] && break
  kill -0 "$SRV_PID" 2>/dev/null || { cat "$SCRATCH/server.err" >&2; exit 1; }
  sleep 0.1
done
[[ -n $PORT ]] || { echo "tfb.sh: server not listening" >&2; exit 1; }

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
echo "spindle-tfb --blocking, 1 shard on core $SERVER_CPU, $OFFLOAD offload threads" \
  "(= PostgreSQL connections); PostgreSQL 15 on core(s) $PG_CPUS; h2load on core $CLIENT_CPU"
echo "h2load -c $CONNS -m $STREAMS, ${WARMUP} s warm-up run, then ${DURATION} s measured per endpoint$( ((QUICK)) && echo ' (--quick)')"
echo "machine: $NCPU cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start (a busy machine makes these figures noisy)"
printf '%-22s %10s %9s %14s %15s %8s %8s\n' endpoint req/s p99_ms spindle_us/req postgres_us/req 2xx other
for ep in "${ENDPOINTS[@]}"; do
  name=$(echo "$ep" | tr -c 'a-z0-9\n' '_')
  out=$SCRATCH/h2load$name.txt log=$SCRATCH/h2load$name.log
  taskset -c "$CLIENT_CPU" h2load -t 1 -c "$CONNS" -m "$STREAMS" -D "$WARMUP" \
    "http://127.0.0.1:$PORT$ep" >"$SCRATCH/warmup$name.txt" 2>&1 || true
  s0=$(ticks "$SRV_PID") p0=$(pg_ticks)
  taskset -c "$CLIENT_CPU" h2load -t 1 -c "$CONNS" -m "$STREAMS" -D "$DURATION" \
    --log-file="$log" "http://127.0.0.1:$PORT$ep" >"$out" 2>&1 || true
  s1=$(ticks "$SRV_PID") p1=$(pg_ticks)
  "$PY" - "$out" "$log" $((s1 - s0)) $((p1 - p0)) "$HZ" "$ep" <<'EOF'
import re, sys
out, log, sticks, pticks, hz, ep = sys.argv[1:]
text = open(out, errors="replace").read()
m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text)
st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
done = re.search(r"requests: \d+ total, \d+ started, (\d+) done", text)
if not (m and st and done):
    print("%-22s h2load failed: %s" % (ep, text.strip().splitlines()[-1:] or "?"))
    sys.exit(0)
rps = float(m.group(1))
lat = sorted(int(l.split()[2]) for l in open(log) if len(l.split()) >= 3)
p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] / 1e3 if lat else float("nan")
reqs = int(done.group(1))
us = lambda t: int(t) * 1e6 / int(hz) / reqs if reqs else float("nan")
ok = int(st.group(1))
other = reqs - ok
print("%-22s %10.0f %9.2f %14.1f %15.1f %8d %8d" % (ep, rps, p99, us(sticks), us(pticks), ok, other))
EOF
done
if [[ -s $SCRATCH/server.err ]]; then
  echo "server log (warnings and errors):"
  tail -n 5 "$SCRATCH/server.err"
fi
