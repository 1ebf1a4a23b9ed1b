#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this; README's "run the whole test
# suite" command). Works on a clean clone without a GPU.
#   1. deps    install the missing Debian packages (scripts/install_deps.sh)
#   2. build   Release build (-O2) of tests (unity TUs at -O1) and examples, and of bench at -O0 only
#              to check that it compiles (EMBER_BENCH_COMPILE_ONLY), 2 jobs (build/)
#   3. test    ctest -j2: one test per test file, plus the find_package consumer
#   4. asan    the whole suite and mnist_cnn under ASan + UBSan (scripts/sanitize.sh asan, build-asan/)
#   5. tsan    the threading tests under TSan (scripts/sanitize.sh tsan, build-tsan/); the fuzz
#              binary compiles beside it (scripts/fuzz.sh --ci --build-only: one clang TU at -O0)
#   6. fuzz    every libFuzzer target for 30 s, two at a time, after replaying its committed crash
#              inputs (scripts/fuzz.sh --ci --no-build, build-fuzz-ci/)
# Prints each stage's wall and CPU (user+sys) time, then a summary.
#   bash scripts/test_all.sh            everything
#   bash scripts/test_all.sh --quick    stages 1-3 only (no sanitizer builds, no fuzzing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "test_all.sh: unknown option '$arg' (expected --quick or --help)" >&2; exit 2 ;;
  esac
done

# CPU seconds (user+sys) used so far by finished children of this shell, into $cpu. `times` must
# run in this shell (a pipe or $(...) would fork and see no children), so it writes to a file.
times_file=$(mktemp)
trap 'rm -f "$times_file"' EXIT
children_cpu() {
  times >"$times_file"
  cpu=$(tail -n 1 "$times_file" | awk '{ s = 0; for (i = 1; i <= 2; ++i) { split($i, p, "m"); s += p[1] * 60 + p[2] } printf "%.0f", s }')
}

summary=()
all_start=$SECONDS
stage() {
  local name=$1
  shift
  local t0=$SECONDS c0
  children_cpu
  c0=$cpu
  echo "== test_all: $name"
  if ! "$@"; then
    echo "== test_all: stage '$name' FAILED after $((SECONDS - t0)) s" >&2
    exit 1
  fi
  local line
  children_cpu
  line=$(printf '%-6s %5d s wall %6d s CPU (user+sys)' "$name" $((SECONDS - t0)) $((cpu - c0)))
  summary+=("$line")
  echo "== test_all: $line"
}

deps() { bash scripts/install_deps.sh; }
# -O2 rather than Release's default -O3: the tree is built to be tested, not timed, and -O2 compiles
# a program ~30% faster (mnist_cnn 136 vs 198 CPU-s). Benchmarks and training runs use a normal
# Release build (README). CI builds the benchmarks but does not run them: compiled unoptimised they
# cost a third of the CPU time (bench/CMakeLists.txt), and those binaries refuse to run.
build() {
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DEMBER_BENCH_COMPILE_ONLY=ON &&
    cmake --build build -j2
}
unit() { ctest --test-dir build --output-on-failure -j2; }
asan() { EMBER_SAN_JOBS=2 bash scripts/sanitize.sh asan; }
# TSan's build and fuzz_all's are one translation unit each, so the fuzz binary compiles on the
# core TSan's compile leaves idle (its time and CPU count in this stage).
tsan() {
  mkdir -p build-fuzz-ci
  bash scripts/fuzz.sh --ci --build-only >build-fuzz-ci/build.log 2>&1 &
  local fuzz_build=$! status=0
  EMBER_SAN_JOBS=2 bash scripts/sanitize.sh tsan || status=$?
  if ! wait "$fuzz_build"; then
    cat build-fuzz-ci/build.log
    echo "test_all: building the fuzz targets (scripts/fuzz.sh --ci --build-only) failed" >&2
    status=1
  fi
  return $status
}
fuzz() { EMBER_FUZZ_JOBS=2 bash scripts/fuzz.sh --ci --no-build 30; }

stage deps deps
stage build build
stage test unit
if [[ $quick == 0 ]]; then
  stage asan asan
  stage tsan tsan
  stage fuzz fuzz
fi

echo "== test_all: passed in $((SECONDS - all_start)) s"
printf '   %s\n' "${summary[@]}"
