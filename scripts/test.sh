#!/usr/bin/env bash
# The one test command: install what the tests need, configure, build with
# warnings as errors, run every CTest test, print one summary line.
#
#   bash scripts/test.sh [--asan | --valgrind] [-R REGEX]
#
#   --asan     ASan + UBSan build in build-asan/ (SPINDLE_SANITIZE=ON);
#              also SPINDLE_ASAN=1 in the environment
#   --valgrind memcheck in build-valgrind/: the proto/ and core/ unit tests
#              (following Criterion's forked children, where LeakSanitizer
#              sees nothing) and the integration tests with the server under
#              valgrind (the suites light enough for memcheck)
#   -R REGEX   run only the tests whose names match (ctest -R)
#
# Environment: SPINDLE_TEST_TIMEOUT   seconds per test (default 300)
#              SPINDLE_TEST_JOBS      parallel tests (default 2)
# Exits non-zero if setup, configure, build or any test fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
asan=${SPINDLE_ASAN:-0}
valgrind=0
filter=()

while (( $# )); do
  case $1 in
    --asan) asan=1 ;;
    --valgrind) valgrind=1 ;;
    -R) [[ $# -ge 2 ]] || { echo "test.sh: -R needs a regex" >&2; exit 2; }
        filter=(-R "$2"); shift ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

build=$root/build
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPINDLE_WERROR=ON -DSPINDLE_TESTS=ON)
if [[ $asan == 1 ]]; then
  build=$root/build-asan
  cmake_args+=(-DSPINDLE_SANITIZE=ON)
  # Abort on the first report, and make UBSan reports fatal and traced.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
fi
if [[ $valgrind == 1 ]]; then
  build=$root/build-valgrind
fi
label=$(basename "$build")

fail() {
  echo "spindle ($label): FAILED at $1" >&2
  exit 1
}

bash "$root/scripts/setup.sh" test || fail "setup (scripts/setup.sh test)"
cmake -S "$root" -B "$build" "${cmake_args[@]}" >/dev/null || fail "configure"
cmake --build "$build" -j"$(nproc)" || fail "build"

if [[ $valgrind == 1 ]]; then
  vg=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9)
  rc=0 n=0 bad=0
  # Unit tests: Criterion forks a child per test; follow it.
  for t in "$build"/tests/proto/test_* "$build"/tests/core/test_*; do
    [[ -x $t ]] || continue
    n=$((n + 1))
    if CRITERION_NO_EARLY_EXIT=1 "${vg[@]}" --trace-children=yes "$t" --jobs 1 >"$t.valgrind.log" 2>&1; then
      echo "valgrind: $(basename "$t") clean"
    else
      bad=$((bad + 1)); echo "valgrind: $(basename "$t") FAILED (see $t.valgrind.log)"
    fi
  done
  # Integration tests with the server under memcheck (--fair-sched: valgrind
  # does not know io_uring_enter blocks; see README).
  export SPINDLE_HELLO_WRAPPER="${vg[*]} --fair-sched=yes --soname-synonyms=somalloc=*jemalloc*"
  # Only the suites light enough for memcheck (the others move hundreds of
  # MiB); integration.memcheck is the dedicated one and runs in CI too.
  ctest --test-dir "$build" --output-on-failure \
    -R 'integration\.(memcheck|hostile|stall|limits|config)$' -j1 --timeout 600 || rc=$?
  echo "spindle (valgrind): $((n - bad)) of $n unit test programs clean; integration ctest exit $rc"
  (( bad == 0 && rc == 0 ))
  exit $?
fi
log=$build/ctest-summary.log
rc=0
ctest --test-dir "$build" --output-on-failure --no-tests=error \
  -j"${SPINDLE_TEST_JOBS:-2}" --timeout "${SPINDLE_TEST_TIMEOUT:-300}" "${filter[@]}" \
  2>&1 | tee "$log" || rc=$?

# ctest: "100% tests passed, 0 tests failed out of 12"
if summary=$(grep -E '[0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1) &&
   [[ $summary =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
  failed=${BASH_REMATCH[1]} total=${BASH_REMATCH[2]}
  echo "spindle: $((total - failed)) passed, $failed failed"
else
  echo "spindle: ctest ran no tests or crashed (exit $rc)"
  (( rc )) || rc=1
fi
exit "$rc"
