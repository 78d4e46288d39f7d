#!/usr/bin/env bash
# Build spindle and run the example server:
#
#   bash scripts/run.sh [server options...]
#
# Installs the build dependencies, builds into build/, then execs
# build/apps/hello/spindle-hello with the given arguments.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build
server=$build/apps/hello/spindle-hello

bash "$root/scripts/setup.sh" build
# The unit tests need Criterion, which only `setup.sh test` installs: build
# them here only if it is present (build/ is shared with scripts/test.sh).
tests=OFF
if pkg-config --exists criterion 2>/dev/null; then
  tests=ON
fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPINDLE_TESTS="$tests" >/dev/null
cmake --build "$build" -j"$(nproc)"

exec "$server" "$@"
