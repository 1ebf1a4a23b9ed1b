#!/usr/bin/env bash
# Builds the test suite under sanitizers in its own build dir and runs it (scripts/test_all.sh, and
# so CI, runs both modes).
#   scripts/sanitize.sh asan   AddressSanitizer + UndefinedBehaviorSanitizer: the whole suite; the
#                              example programs the tests run get ASan only (examples/CMakeLists.txt)
#   scripts/sanitize.sh tsan   ThreadSanitizer (built without OpenMP, see cmake/Sanitizers.cmake):
#                              the test files that start threads (EMBER_SAN_TSAN_FILES)
# Options (environment):
#   EMBER_SAN_JOBS    build and ctest parallelism (default 1)
#   EMBER_SAN_OPT     optimisation level (default -O0: under ASan a unity batch compiles ~3x faster
#                     than at -O1 and the suite still runs in about a minute; docs/RELIABILITY.md)
#   EMBER_SAN_BUILD   build dir (default build-asan / build-tsan)
#   EMBER_SAN_TESTS   doctest -tc filter: run the binary once with it instead of ctest per file
#   EMBER_SAN_TSAN_FILES  test files of the TSan binary (default test_threads;test_data;test_anomaly;test_word2vec)
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
opt=${EMBER_SAN_OPT:--O0}

if [[ $mode == tsan ]]; then
  # Only the threading tests, one unity TU; no examples or bench (nothing here runs them).
  parts=(-DEMBER_TEST_FILES="${EMBER_SAN_TSAN_FILES:-test_threads;test_data;test_anomaly;test_word2vec}" -DEMBER_UNITY_BATCHES=1
         -DEMBER_BUILD_EXAMPLES=OFF)
else
  # The whole suite; examples stay on because test_examples runs the sanitized mnist_cnn.
  parts=(-DEMBER_TEST_FILES= -DEMBER_UNITY_BATCHES=2 -DEMBER_BUILD_EXAMPLES=ON)
fi

start=$SECONDS
# Debug with our own flags: no -DNDEBUG, so assertions stay on under the sanitizers. The unity
# build (EMBER_UNITY_TESTS, the default) compiles the suite as a few TUs; no PCH.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="$opt -g1" -DEMBER_SANITIZE="$san" \
  -DEMBER_PCH=OFF -DEMBER_CUDA=OFF -DEMBER_UNITY_TESTS=ON -DEMBER_BUILD_BENCH=OFF "${parts[@]}" >/dev/null
cmake --build "$build" -j"$jobs" --target ember_tests
built=$SECONDS
echo "sanitize.sh: $mode build: $((built - start)) s"

# EMBER_DISABLE_CPU_CACHE (ASan): every freed tensor goes back to malloc, so ASan sees
# use-after-free. TSan keeps the cache on: the threads share it, which is what it should check.
# allocator_may_return_null: the allocator turns a failed malloc into ember::Error (tested), which
# ASan would otherwise abort on for requests above its own limit.
if [[ $mode == asan ]]; then
  export EMBER_DISABLE_CPU_CACHE=1
fi
# Reports go to files (log_path), not only to stderr: test_examples runs mnist_cnn and checks
# just "exit code != 0" for bad arguments, which a sanitizer abort would also satisfy. Any report
# file left after the run fails it, whichever process wrote it.
logs=$(cd "$build" && pwd)/sanitizer-logs  # EMBER_SAN_BUILD may be relative or absolute
rm -rf "$logs" && mkdir -p "$logs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}:log_path=$logs/asan
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}:log_path=$logs/ubsan
# Word2Vec's Hogwild updates race by design: scripts/tsan.supp suppresses exactly those (its reason).
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp}:log_path=$logs/tsan
# Third-party leaks only, each with its reason in the file.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}
status=0
if [[ -n ${EMBER_SAN_TESTS:-} ]]; then
  "$build/tests/ember_tests" -tc="$EMBER_SAN_TESTS" || status=$?
else
  # One ctest test per test file (tests/CMakeLists.txt), so a report names the file that caused it.
  ctest --test-dir "$build" -R '^ember_tests\.' -j"$jobs" --output-on-failure || status=$?
fi
# A log holding only allocator_may_return_null's "failed to allocate" warnings is the tested
# out-of-memory path, not a report.
reports=$(grep -lE 'ERROR: |runtime error|WARNING: ThreadSanitizer' "$logs"/* 2>/dev/null || true)
if [[ -n $reports ]]; then
  for f in $reports; do echo "==== $f"; cat "$f"; done
  echo "sanitize.sh: $mode: sanitizer reports (above, and in $logs)" >&2
  status=1
fi
if [[ $status != 0 ]]; then
  echo "sanitize.sh: $mode: FAILED after $((SECONDS - start)) s" >&2
  exit "$status"
fi
echo "sanitize.sh: $mode: build $((built - start)) s, run $((SECONDS - built)) s, total $((SECONDS - start)) s"
