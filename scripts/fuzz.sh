#!/usr/bin/env bash
# Fuzz the sans-IO protocol core with libFuzzer.
#
#   bash scripts/fuzz.sh [target] [seconds]
#
#   target   hpack | frame | conn | h1 | fuzz_<name> | all   (default: all)
#   seconds  per target (default: 60)
#
# Configures a clang build in build-fuzz/ (-DSPINDLE_FUZZ=ON: ASan + UBSan +
# coverage), builds the target(s), and runs each on a scratch corpus seeded
# from tests/fuzz/corpus/<name>/.  The checked-in corpus is never written:
# new inputs stay in build-fuzz/fuzz-work/<name>/corpus, crashes in
# build-fuzz/fuzz-work/<name>/artifacts.  To keep an interesting input, copy it
# into the corpus by hand (after minimizing it with -minimize_crash=1 or
# -merge=1).  Extra libFuzzer flags: FUZZ_FLAGS="-jobs=2 -workers=2" bash ...
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
all_targets=(hpack frame conn h1)

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

target=${1:-all}
seconds=${2:-60}
case $target in
  -h|--help) usage; exit 0 ;;
esac
target=${target#fuzz_}
if [[ ! $seconds =~ ^[0-9]+$ ]] || (( seconds == 0 )); then
  echo "fuzz.sh: seconds must be a positive integer, got '$seconds'" >&2
  exit 2
fi
if [[ $target == all ]]; then
  wanted=("${all_targets[@]}")
elif [[ " ${all_targets[*]} " == *" $target "* ]]; then
  wanted=("$target")
else
  echo "fuzz.sh: unknown target '$target' (one of: ${all_targets[*]} all)" >&2
  exit 2
fi

bash "$root/scripts/setup.sh" fuzz

build=$root/build-fuzz
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSPINDLE_FUZZ=ON -DSPINDLE_TESTS=OFF >/dev/null

ran=0 failed=()
for name in "${wanted[@]}"; do
  if [[ ! -f $root/tests/fuzz/fuzz_$name.c ]]; then
    echo "fuzz.sh: tests/fuzz/fuzz_$name.c does not exist yet; skipping $name"
    continue
  fi
  cmake --build "$build" -j"$(nproc)" --target "fuzz_$name"

  work=$build/fuzz-work/$name
  rm -rf "$work/corpus"
  mkdir -p "$work/corpus" "$work/artifacts"
  if [[ -d $root/tests/fuzz/corpus/$name ]]; then
    cp -R "$root/tests/fuzz/corpus/$name/." "$work/corpus/"
  fi
  opts=(-max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/artifacts/")
  [[ -f $root/tests/fuzz/$name.dict ]] && opts+=(-dict="$root/tests/fuzz/$name.dict")
  # shellcheck disable=SC2206 # FUZZ_FLAGS is a list of flags, split on purpose
  opts+=(${FUZZ_FLAGS:-})

  echo "fuzz.sh: fuzz_$name for ${seconds}s (corpus $work/corpus)"
  ran=$((ran + 1))
  if ! (cd "$work" && UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
        "$build/tests/fuzz/fuzz_$name" "${opts[@]}" "$work/corpus"); then
    failed+=("$name")
    echo "fuzz.sh: fuzz_$name FAILED; reproducer(s) in $work/artifacts/" >&2
  fi
done

if (( ran == 0 )); then
  echo "fuzz.sh: no fuzz target source exists yet (tests/fuzz/fuzz_<name>.c)"
  exit 0
fi
if (( ${#failed[@]} )); then
  echo "fuzz.sh: ${#failed[@]} of $ran target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: $ran target(s) ran ${seconds}s each without a finding"
