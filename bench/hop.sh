#!/usr/bin/env bash
# hop.sh - the hop/ microbenchmarks (bench/micro_hop.c) in alternating
# repetitions: each round runs inline_1, queued_1, inline_m64, queued_m64 as
# separate processes, one after the other, so load from other work on the
# machine falls on both variants alike.  Prints one line per case and round.
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
    "$micro" "${opts[@]}" "hop/$c" 2>/dev/null | awk -v r="$r" '$1 ~ /^hop\// {
      printf "round %d  %-16s %8s ns/request  (p10 %s, p90 %s, cpu %s)  %s\n",
        r, $1, $2, $3, $4, $6, substr($0, index($0, "request;") + 9) }'
  done
done
