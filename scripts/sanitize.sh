#!/usr/bin/env bash
# Builds ember_tests under sanitizers in its own build dir and runs it.
#   scripts/sanitize.sh asan   AddressSanitizer + UndefinedBehaviorSanitizer, the whole suite
#   scripts/sanitize.sh tsan   ThreadSanitizer (built without OpenMP, see cmake/Sanitizers.cmake),
#                              the tests that start threads: DataLoader workers, per-thread modes
# Options (environment):
#   EMBER_SAN_JOBS   build parallelism (default 1: the CI machine has 2 cores)
#   EMBER_SAN_OPT    optimisation level (default -O1: ~2x faster than -O0 under ASan, stacks still usable)
#   EMBER_SAN_BUILD  build dir (default build-asan / build-tsan)
#   EMBER_SAN_TESTS  doctest -tc filter (default: everything for asan, the threading tests for tsan)
# Any sanitizer report fails the run (-fno-sanitize-recover=all, halt_on_error). Timings are printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mode=${1:-}
case $mode in
  asan) san=address,undefined ;;
  tsan) san=thread ;;
  *) echo "usage: scripts/sanitize.sh asan|tsan" >&2; exit 2 ;;
esac
build=${EMBER_SAN_BUILD:-build-$mode}
jobs=${EMBER_SAN_JOBS:-1}
opt=${EMBER_SAN_OPT:--O1}

start=$SECONDS
# Debug with our own flags: no -DNDEBUG, so assertions stay on under the sanitizers. No PCH: a
# precompiled header built with other flags would be rejected, and one TU at a time is the CI case.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="$opt -g" -DEMBER_SANITIZE="$san" \
  -DEMBER_PCH=OFF -DEMBER_CUDA=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target ember_tests
built=$SECONDS
echo "sanitize.sh: $mode build: $((built - start)) s"

# EMBER_DISABLE_CPU_CACHE: every freed tensor goes back to malloc, so ASan sees use-after-free.
# allocator_may_return_null: the allocator turns a failed malloc into ember::Error (tested), which
# ASan would otherwise abort on for requests above its own limit.
export EMBER_DISABLE_CPU_CACHE=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
if [[ $mode == tsan ]]; then
  filter=${EMBER_SAN_TESTS:-*DataLoader*,*thread*,*worker*}
else
  filter=${EMBER_SAN_TESTS:-*}
fi
"$build/tests/ember_tests" -tc="$filter"
echo "sanitize.sh: $mode: build $((built - start)) s, run $((SECONDS - built)) s, total $((SECONDS - start)) s"
