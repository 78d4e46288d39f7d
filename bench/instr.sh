#!/usr/bin/env bash
# bench/instr.sh - user-space instructions per request of spindle-hello
# binaries, counted by valgrind's callgrind: the same rows as bench/ab.sh
# (small-mux -c 16 -m 64, many-conns -c 256 -m 8, on "/"), each server with
# one shard.  Instruction counts do not move with the machine's load, so
# this is the tool for "did this change cost anything" on a shared or
# drifting VM; it says nothing about kernel time, cache misses or wake-ups,
# which bench/ab.sh and bench/e2e.sh measure.  Build the binaries as
# Release (see bench/ab.sh).
#
#   bash bench/instr.sh BIN [BIN ...] [-n N] [--top K] [--path P] [--preload LIB]
#                       [--header H] [-- SERVER_ARGS...]
#
#   -n N      requests counted per row (default 100000), after 5000 of
#             warm-up that are not counted
#   --top K   also print each binary's K most expensive functions (self
#             instructions per counted request)
#   --path P  the request path (default /)
#   --header H  a request header field for every request ("name: value")
#   --preload LIB  run the servers with LD_PRELOAD=LIB (bench/static_instr.sh:
#             spindle-static under valgrind, which does not know openat2)
#   --        the rest are extra server arguments for every binary (e.g.
#             --set date-header=0)
set -euo pipefail

BINS=() N=100000 TOP=0 EXTRA=() URLPATH=/ PRELOAD= HDR=()
while (( $# )); do
  case $1 in
    -n) N=${2:?}; shift ;;
    --top) TOP=${2:?}; shift ;;
    --path) URLPATH=${2:?}; shift ;;
    --preload) PRELOAD=${2:?}; shift ;;
    --header) HDR+=(-H "${2:?}"); shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -*) echo "instr.sh: unknown option '$1'" >&2; exit 2 ;;
    *) BINS+=("$1") ;;
  esac
  shift
done
(( ${#BINS[@]} )) || { sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
for b in "${BINS[@]}"; do [[ -x $b ]] || { echo "instr.sh: $b is not executable" >&2; exit 2; }; done
for t in valgrind callgrind_control callgrind_annotate h2load; do
  command -v $t >/dev/null || { echo "instr.sh: $t missing (apt-get install valgrind nghttp2-client)" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/spindle-instr.XXXXXX)
SRV=
cleanup() {
  [[ -n $SRV ]] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# count BIN C M: prints "instructions-per-request [top functions file]"
count() {
  local port out
  port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -f "$WORK"/cg.*
  env ${PRELOAD:+LD_PRELOAD=$PRELOAD} valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" "$1" --port "$port" --shards 1 \
    --log-level 0 --set max-requests=0 "${EXTRA[@]}" >"$WORK/out" 2>"$WORK/err" &
  SRV=$!
  for _ in $(seq 300); do grep -q "listening on" "$WORK/out" 2>/dev/null && break; sleep 0.1; done
  grep -q "listening on" "$WORK/out" || { echo "instr.sh: $1 did not start:" >&2; cat "$WORK/err" >&2; exit 1; }
  h2load -n 5000 -c "$2" -m "$3" "${HDR[@]}" "http://127.0.0.1:$port$URLPATH" >/dev/null
  callgrind_control -d "$SRV" >/dev/null 2>&1 # part 1: start-up and warm-up
  out=$(h2load -n "$N" -c "$2" -m "$3" "${HDR[@]}" "http://127.0.0.1:$port$URLPATH")
  callgrind_control -d "$SRV" >/dev/null 2>&1 # part 2: the counted requests
  kill -INT "$SRV"; wait "$SRV" || true; SRV=
  local ok dump
  ok=$(sed -n 's/.* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
  [[ ${ok:-0} -gt 0 ]] || { echo "instr.sh: no request succeeded" >&2; exit 1; }
  grep -Eq "status codes: ($ok 2xx|0 2xx, $ok 3xx)" <<<"$out" || { echo "instr.sh: not every response was 2xx (or 3xx):" >&2; grep "status codes" <<<"$out" >&2; exit 1; }
  dump=$(ls "$WORK"/cg.*.2)
  callgrind_annotate "$dump" | awk -v ok="$ok" '/PROGRAM TOTALS/ { gsub(",", "", $1); printf "%.0f", $1 / ok }'
  if (( TOP )); then
    callgrind_annotate --inclusive=no --threshold=100 "$dump" |
      awk -v ok="$ok" -v k="$TOP" '/file:function/ { on = 1; next }
        on && $1 ~ /^[0-9,]+$/ { v = $1; gsub(",", "", v); fn = $0; sub(/^[^)]*\) */, "", fn);
          sub(/ \[.*$/, "", fn); sub(/^.*:/, "", fn);
          # thread entry functions are on the stack at the dump
          if (fn ~ /^(clone|start_thread|shard_thread)$/) next
          printf "    %7.0f  %s\n", v / ok, fn; if (++n >= k) exit }' >"$WORK/top"
  fi
}

echo "| binary | row | instructions/request |"
echo "|---|---|---|"
for b in "${BINS[@]}"; do
  for row in "small-mux 16 64" "many-conns 256 8"; do
    read -r name c m <<<"$row"
    echo "| $b | $name | $(count "$b" "$c" "$m") |"
    if (( TOP )); then cat "$WORK/top"; fi
  done
done
