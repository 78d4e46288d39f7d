#!/usr/bin/env bash
# bench/soak.sh - the soak run of issue 7 (not part of the default tests):
# ten million requests with random client resets, random window behaviour
# and random connection drops; zero server errors, RSS flat within 1 MiB
# after warm-up.
#
#   bash bench/soak.sh [--requests N] [--quick] [--build DIR] [--no-build]
#                      [--workers N] [--seed S] [--keep DIR]
#
#   --requests N  h2load requests (default 10000000; about 3 min on 2 cores)
#   --quick       300000 requests: a fast check of the whole pipeline
#   --build DIR   build tree with apps/hello/spindle-hello (default build/);
#                 it is configured and built there unless --no-build
#   --no-build    use DIR as it is
#   --workers N   chaos client processes (default 4; plus one that exceeds
#                 the Rapid Reset / glitch budgets on purpose and one that
#                 holds a zero-window download)
#   --seed S      chaos seed (printed; the same seed replays the same choices,
#                 timing aside)
#   --keep DIR    scratch directory (server log, chaos JSON/log) instead of a
#                 fresh /tmp/soak-* one
#
# spindle-hello runs with --shards 2 and default limits.  The load is
# successive h2load runs (GET /, POST /echo with 1 B..4 KiB bodies, GET /1m;
# -c 4..500, -m 1..100) beside bench/soak_chaos.py's clients; bench/soak_run.py
# drives it, samples VmRSS every second, prints PASS/FAIL per criterion and
# writes bench/results/soak.json (soak-quick.json with --quick) and, on a full
# run, bench/SOAK.md.  Exit status 1 if any criterion fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3 # Debian's: python3-h2/hpack are only visible to it
BUILD=$ROOT/build BUILD_IT=1 QUICK=0 ARGS=() COMMAND="bash bench/soak.sh${*:+ $*}"
while (($#)); do
  case $1 in
    --requests) ARGS+=(--requests "${2:?--requests needs a number}"); shift ;;
    --quick) QUICK=1; ARGS+=(--quick) ;;
    --build) BUILD=$(realpath -m "${2:?--build needs a directory}"); shift ;;
    --no-build) BUILD_IT=0 ;;
    --workers) ARGS+=(--workers "${2:?--workers needs a number}"); shift ;;
    --seed) ARGS+=(--seed "${2:?--seed needs a number}"); shift ;;
    --keep) ARGS+=(--keep "$(realpath -m "${2:?--keep needs a directory}")"); shift ;;
    -h|--help) sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

for tool in h2load "$PY"; do
  command -v "$tool" >/dev/null || { echo "soak: $tool not found (bash scripts/setup.sh test)" >&2; exit 1; }
done
"$PY" -c 'import h2, hpack, hyperframe' 2>/dev/null ||
  { echo "soak: python3-h2 missing (bash scripts/setup.sh test)" >&2; exit 1; }

if ((BUILD_IT)); then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target spindle-hello >/dev/null
fi
HELLO=$BUILD/apps/hello/spindle-hello
[[ -x $HELLO ]] || { echo "soak: $HELLO not built (drop --no-build)" >&2; exit 1; }

if ((QUICK)); then
  OUT=(--out "$ROOT/bench/results/soak-quick.json")
else
  OUT=(--out "$ROOT/bench/results/soak.json" --md "$ROOT/bench/SOAK.md")
fi
exec "$PY" "$ROOT/bench/soak_run.py" --hello "$HELLO" --command "$COMMAND" "${OUT[@]}" "${ARGS[@]}"
