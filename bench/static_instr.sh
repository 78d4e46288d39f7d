#!/usr/bin/env bash
# bench/static_instr.sh - user-space instructions per request of
# spindle-static's cache hits, counted by callgrind through bench/instr.sh:
# one row per file (by default 13 B and 4 KiB, as bench/e2e.sh's file-13b
# and file-4k rows: every request after the warm-up a hit of a content
# entry; --files also takes f64k, and f256k, a descriptor entry whose hits
# send from the cached mapping, a few each second offloaded to renew it).
# valgrind 3.19 does not know openat2: the server runs with
# bench/static_openat2_shim.c preloaded (openat2 -> openat, for the
# start-up probe; hits make no system call).  Instruction counts do not
# move with the machine's load (see bench/instr.sh); they cover user space
# only.
#
#   bash bench/static_instr.sh BIN [BIN ...] [-n N] [--top K] [--files "f13 f4k f256k"]
#                              [--304]
#
# --304: every request carries If-Modified-Since (2100): 304 hits.
# BIN: spindle-static binaries (e.g. build/apps/static/spindle-static).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BINS=() PASS=() FILES="f13 f4k"
while (( $# )); do
  case $1 in
    -n|--top) PASS+=("$1" "${2:?}"); shift ;;
    --files) FILES=${2:?}; shift ;;
    --304) PASS+=(--header "if-modified-since: Fri, 01 Jan 2100 00:00:00 GMT") ;;
    -*) echo "static_instr.sh: unknown option '$1'" >&2; exit 2 ;;
    *) BINS+=("$1") ;;
  esac
  shift
done
(( ${#BINS[@]} )) || { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }

WORK=$(mktemp -d /tmp/spindle-static-instr.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cc -O2 -shared -fPIC -o "$WORK/openat2.so" "$here/static_openat2_shim.c" -ldl
mkdir "$WORK/root"
printf 'Hello, World!' >"$WORK/root/f13"
head -c 4096 /dev/zero | tr '\0' x >"$WORK/root/f4k"
head -c 65536 /dev/zero | tr '\0' x >"$WORK/root/f64k"
head -c 262144 /dev/zero | tr '\0' x >"$WORK/root/f256k"
for f in $FILES; do
  echo "file /$f:"
  bash "$here/instr.sh" "${BINS[@]}" "${PASS[@]}" --path "/$f" --preload "$WORK/openat2.so" \
    -- --root "$WORK/root"
done
