#!/usr/bin/env bash
# Format every tracked C source with the repository's .clang-format
# (clang-format 14, Debian 12).  proto/hpack_tables.c is generated and left
# as its generator writes it.
#
#   bash scripts/format.sh           rewrite files in place
#   bash scripts/format.sh --check   list files that differ; exit 1 if any
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v '^proto/hpack_tables\.c$')
if [[ ${1:-} == --check ]]; then
  bad=0
  for f in "${files[@]}"; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
      echo "$f"; bad=1
    fi
  done
  exit $bad
fi
clang-format -i "${files[@]}"
