#!/usr/bin/env bash
# Builds the CUDA backend and its tests on a GPU machine, runs the CPU/CUDA parity tests, then
# runs them again under compute-sanitizer memcheck. Run from the repository root:
#
#   scripts/gpu_check.sh
#
# Installs nothing and needs no network. Environment:
#   EMBER_DEPS_DIR  folder holding copies of /usr/include/eigen3 (as eigen3/) and
#                   /usr/include/doctest (as doctest/), for machines without them
#   EMBER_GPU_BUILD build folder (default /tmp/ember-gpu-check)
#   EMBER_GPU_MODE  direct (default): nvcc + g++ on kernels/*.cu, test_main.cpp, test_cuda*.cpp
#                   (with cuDNN when its header and library are found: EMBER_WITH_CUDNN, -lcudnn);
#                   cmake: the project's CMake build (needs add_subdirectory(kernels) at the top
#                   level), falling back to direct if it fails
#   EMBER_CUDA_ARCH compute capability to build for (default: the visible GPU's, else 90)
#   JOBS            parallel compile jobs (default: nproc)
# Exit status: 0 only if the build, the tests and memcheck all pass.
set -u
ROOT=$(pwd)
BUILD=${EMBER_GPU_BUILD:-/tmp/ember-gpu-check}
MODE=${EMBER_GPU_MODE:-direct}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 8)}
mkdir -p "$BUILD"
START=$(date +%s)
log() { echo "[gpu_check $(($(date +%s) - START))s] $*"; }

[ -f include/ember/ember.hpp ] || { echo "gpu_check: run from the repository root"; exit 2; }

NVCC=$(command -v nvcc || true)
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
[ -n "$NVCC" ] || { echo "gpu_check: nvcc not found"; exit 2; }
CUDA_HOME=$(dirname "$(dirname "$NVCC")")
CXX=${CXX:-g++}

ARCH=${EMBER_CUDA_ARCH:-}
if [ -z "$ARCH" ] && command -v nvidia-smi >/dev/null; then
  ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
fi
ARCH=${ARCH:-90}
log "nvcc: $("$NVCC" --version | tail -1); arch sm_$ARCH; $JOBS jobs; build in $BUILD"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

# Header search path for Eigen and doctest.
INC=(-Iinclude)
if [ -n "${EMBER_DEPS_DIR:-}" ]; then
  INC+=("-I$EMBER_DEPS_DIR/eigen3" "-I$EMBER_DEPS_DIR")
fi
INC+=(-I/usr/include/eigen3)

# cuDNN (conv2d): header and library under the CUDA toolkit or the system paths. Without it the
# convolution runs on Ember's im2col kernels + cuBLAS (EMBER_CUDNN=0 forces that).
CUDNN_DEF=() CUDNN_LIB=()
if [ "${EMBER_CUDNN:-1}" != 0 ]; then
  for inc in "$CUDA_HOME/include" /usr/include /usr/include/x86_64-linux-gnu /usr/local/cuda/include; do
    [ -f "$inc/cudnn.h" ] || continue
    for lib in "$CUDA_HOME/lib64" "$CUDA_HOME/lib" /usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64; do
      if [ -e "$lib/libcudnn.so" ] || [ -e "$lib/libcudnn.so.9" ]; then
        CUDNN_DEF=(-DEMBER_WITH_CUDNN "-I$inc")
        if [ -e "$lib/libcudnn.so" ]; then CUDNN_LIB=("-L$lib" "-Wl,-rpath,$lib" -lcudnn)
        else CUDNN_LIB=("$lib/libcudnn.so.9" "-Wl,-rpath,$lib"); fi
        break 2
      fi
    done
  done
fi
if [ ${#CUDNN_DEF[@]} -gt 0 ]; then log "cuDNN: ${CUDNN_DEF[*]} ${CUDNN_LIB[*]}"; else log "cuDNN: not used (conv2d on im2col + cuBLAS)"; fi

BIN=""
build_cmake() {
  command -v cmake >/dev/null || return 1
  grep -q "add_subdirectory(kernels)" CMakeLists.txt || { log "top-level CMakeLists.txt has no add_subdirectory(kernels)"; return 1; }
  local prefix=()
  [ -n "${EMBER_DEPS_DIR:-}" ] && prefix=("-DCMAKE_PREFIX_PATH=$EMBER_DEPS_DIR" "-DEigen3_DIR=$EMBER_DEPS_DIR/eigen3/cmake")
  cmake -S "$ROOT" -B "$BUILD/cmake" -DEMBER_BUILD_TESTS=ON -DEMBER_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" \
    -DEMBER_CUDA_ARCHITECTURES="$ARCH" "${prefix[@]}" >"$BUILD/cmake.log" 2>&1 || { tail -20 "$BUILD/cmake.log"; return 1; }
  cmake --build "$BUILD/cmake" --target ember_tests -j "$JOBS" >>"$BUILD/cmake.log" 2>&1 || { grep -E "error" "$BUILD/cmake.log" | head -30; return 1; }
  BIN="$BUILD/cmake/tests/ember_tests"
}

build_direct() {
  local obj="$BUILD/obj"
  mkdir -p "$obj"
  local pids=() kobjs=() f
  for f in kernels/*.cu; do
    kobjs+=("$obj/$(basename "$f" .cu).o")
    "$NVCC" -std=c++20 -O3 -Xcompiler=-fPIC --expt-relaxed-constexpr -gencode "arch=compute_$ARCH,code=sm_$ARCH" \
      "${CUDNN_DEF[@]}" -Iinclude -c "$f" -o "$obj/$(basename "$f" .cu).o" >"$obj/$(basename "$f").log" 2>&1 &
    pids+=($!)
  done
  local cxxflags=(-std=c++20 -O2 -fopenmp -Wall -Wextra -DEMBER_WITH_CUDA "-DEMBER_SOURCE_DIR=\"$ROOT\"" "${INC[@]}" "-I$CUDA_HOME/include")
  "$CXX" "${cxxflags[@]}" -c tests/test_main.cpp -o "$obj/test_main.o" >"$obj/test_main.log" 2>&1 &
  pids+=($!)
  local tobjs=() t
  for t in tests/test_cuda*.cpp; do
    tobjs+=("$obj/$(basename "$t" .cpp).o")
    "$CXX" "${cxxflags[@]}" -c "$t" -o "$obj/$(basename "$t" .cpp).o" >"$obj/$(basename "$t" .cpp).log" 2>&1 &
    pids+=($!)
  done
  local ok=1 p
  for p in "${pids[@]}"; do wait "$p" || ok=0; done
  if [ $ok = 0 ]; then
    grep -h -E "error|Error" "$obj"/*.log | head -40
    return 1
  fi
  local libdir="$CUDA_HOME/lib64"
  [ -d "$libdir" ] || libdir="$CUDA_HOME/lib"
  "$CXX" -fopenmp "$obj/test_main.o" "${tobjs[@]}" "${kobjs[@]}" -L"$libdir" -Wl,-rpath,"$libdir" \
    "${CUDNN_LIB[@]}" -lcudart -lcublas -ldl -lpthread -lrt -o "$BUILD/ember_cuda_tests" >"$obj/link.log" 2>&1 || { cat "$obj/link.log" | head -30; return 1; }
  BIN="$BUILD/ember_cuda_tests"
}

if [ "$MODE" = cmake ]; then
  log "building with CMake"
  build_cmake || { log "CMake build failed; falling back to the direct build"; build_direct; }
else
  log "building directly (nvcc + $CXX)"
  build_direct
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || { log "BUILD FAILED"; echo "SUMMARY: build FAILED"; exit 1; }
log "built $BIN"

# Test names: every CUDA case starts with "cuda:".
log "running the CUDA tests"
"$BIN" --test-case="cuda:*" --duration=true 2>&1 | tee "$BUILD/tests.log" | grep -v "^\s*$" | tail -60
TEST_RC=${PIPESTATUS[0]}
grep -q "CUDA tests skipped" "$BUILD/tests.log" && log "WARNING: tests were skipped (no GPU visible to this process)"

SAN_RC=skipped
SAN=$(command -v compute-sanitizer || true)
[ -z "$SAN" ] && [ -x "$CUDA_HOME/bin/compute-sanitizer" ] && SAN="$CUDA_HOME/bin/compute-sanitizer"
if [ -n "$SAN" ]; then
  log "running compute-sanitizer memcheck"
  # API errors are not memory errors: the allocator test provokes an out-of-memory on purpose.
  "$SAN" --tool memcheck --leak-check no --report-api-errors no --error-exitcode 3 "$BIN" --test-case="cuda:*" >"$BUILD/memcheck.log" 2>&1
  SAN_RC=$?
  grep -E "ERROR SUMMARY|Invalid|out of bounds|test cases:" "$BUILD/memcheck.log" | head -20
else
  log "compute-sanitizer not found; memcheck skipped"
fi

echo "================================================================"
echo "SUMMARY: tests rc=$TEST_RC ($(grep -E 'test cases:' "$BUILD/tests.log" | tail -1 | sed 's/.*test cases://')), memcheck rc=$SAN_RC, $(($(date +%s) - START))s"
echo "logs: $BUILD/tests.log $BUILD/memcheck.log"
[ "$TEST_RC" = 0 ] && { [ "$SAN_RC" = 0 ] || [ "$SAN_RC" = skipped ]; }
