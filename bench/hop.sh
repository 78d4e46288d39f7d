#!/usr/bin/env bash
# hop.sh - the hop/ microbenchmarks (bench/micro_hop.c) in alternating
# repetitions: each round runs inline_1, queued_1, inline_m64, queued_m64 as
# separate processes, one after the other, so load from other work on the
# machine falls on both variants alike.  Prints one line per case and round:
# the median wall ns/request, the thread's CPU ns/request (wall scaled by its
# CPU share: what is left when other processes preempt it), that share, and
# the allocations per request.
#
#   bash bench/hop.sh [--quick] [ROUNDS]      (default 5 rounds; build/ first)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
micro=${SPINDLE_MICRO:-$root/build/bench/spindle-micro}
opts=(--runs 5 --time 200)
if [[ ${1:-} == --quick ]]; then opts=(--quick); shift; fi
rounds=${1:-5}
[[ -x $micro ]] || { echo "hop.sh: build spindle-micro first ($micro)" >&2; exit 2; }
for ((r = 1; r <= rounds; r++)); do
  for c in inline_1 queued_1 inline_m64 queued_m64; do
    "$micro" --json "${opts[@]}" "hop/$c" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
r = sys.argv[1]
for x in json.load(sys.stdin)["results"]:
    n = x.get("notes", {})
    print("round %s  %-15s %8.1f ns wall  %8.1f ns cpu  (cpu %3.0f%%)  allocs/req %.4f%s" % (
        r, x["name"], x["ns_per_op"]["median"], x["cpu_ns_per_op"], x["cpu_pct"],
        n.get("allocs_per_req", 0), "  ERRORS" if "ERRORS" in n else ""))' "$r"
  done
done
