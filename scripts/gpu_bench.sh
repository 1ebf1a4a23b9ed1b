#!/usr/bin/env bash
# The session's one GPU run: CUDA tests + memcheck (scripts/gpu_check.sh), then the GPU benchmarks
# (GEMM/elementwise and the MNIST CNN epoch) for Ember and for PyTorch on the same card.
# Run from the repository root. Logs go to $OUT (or ./gpu-out). Environment as gpu_check.sh;
# MNIST_GZ_DIR: folder with the four MNIST *-ubyte.gz files (default .devcarry/mnist).
set -u
ROOT=$(pwd)
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
export EMBER_GPU_BUILD=${EMBER_GPU_BUILD:-/tmp/ember-gpu-check}
BUILD=$EMBER_GPU_BUILD
OBJ=$BUILD/obj
mkdir -p "$OBJ"
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
CUDA_HOME=$(dirname "$(dirname "$NVCC")")
INC=(-Iinclude)
[ -n "${EMBER_DEPS_DIR:-}" ] && INC+=("-I$EMBER_DEPS_DIR/eigen3" "-I$EMBER_DEPS_DIR")
INC+=(-I/usr/include/eigen3 "-I$CUDA_HOME/include")
CXXFLAGS=(-std=c++20 -O3 -DNDEBUG -fopenmp -DEMBER_WITH_CUDA "${INC[@]}")
START=$(date +%s)
log() { echo "[gpu_bench $(($(date +%s) - START))s] $*"; }

# Bench objects compile while the tests build and run.
g++ "${CXXFLAGS[@]}" -c bench/bench_cuda.cpp -o "$OBJ/bench_cuda.o" >"$OUT/bench_build.log" 2>&1 &
P1=$!
g++ "${CXXFLAGS[@]}" -DEMBER_NO_ZLIB -c bench/bench_cuda_mnist.cpp -o "$OBJ/bench_cuda_mnist.o" >>"$OUT/bench_build.log" 2>&1 &
P2=$!
MNIST=/tmp/mnist
mkdir -p $MNIST
for f in "${MNIST_GZ_DIR:-.devcarry/mnist}"/*.gz; do gzip -dc "$f" >"$MNIST/$(basename "$f" .gz)"; done

log "gpu_check (build, CUDA tests, memcheck)"
timeout 300 bash scripts/gpu_check.sh >"$OUT/gpu_check.txt" 2>&1
log "gpu_check rc=$?"; grep -E "SUMMARY|test cases|assertions|ERROR SUMMARY|FAIL" "$OUT/gpu_check.txt" | tail -8
cp "$BUILD/tests.log" "$OUT/tests.log" 2>/dev/null; cp "$BUILD/memcheck.log" "$OUT/memcheck.log" 2>/dev/null

wait $P1 $P2
CUDNN_LIB=()
for lib in $(ls -d "$CUDA_HOME"/lib64 /usr/lib/x86_64-linux-gnu /opt/torch/.venv/lib/python3*/site-packages/nvidia/cudnn/lib 2>/dev/null); do
  [ -e "$lib/libcudnn.so.9" ] || [ -e "$lib/libcudnn.so" ] || continue
  CUDNN_LIB=(-L"$lib" -Wl,-rpath,"$lib" "$lib/$(ls "$lib" | grep -m1 '^libcudnn.so')"); break
done
KOBJ=$(ls "$OBJ"/*.o | grep -v -E "test_|bench_")
for b in bench_cuda bench_cuda_mnist; do
  g++ -fopenmp "$OBJ/$b.o" $KOBJ -L"$CUDA_HOME/lib64" -Wl,-rpath,"$CUDA_HOME/lib64" "${CUDNN_LIB[@]}" \
    -lcudart -lcublas -ldl -lpthread -lrt -o "$BUILD/$b" >>"$OUT/bench_build.log" 2>&1 || log "link of $b failed"
done
grep -E "error" "$OUT/bench_build.log" | head -10

log "bench_cuda (Ember)"; timeout 90 "$BUILD/bench_cuda" 2>&1 | tee "$OUT/bench_cuda.txt"
log "torch_cuda.py (PyTorch)"; timeout 90 python3 bench/peers/torch_cuda.py 2>&1 | tee "$OUT/torch_cuda.txt"
log "MNIST CNN epoch (Ember)"; timeout 120 "$BUILD/bench_cuda_mnist" $MNIST cuda 2>&1 | tee "$OUT/mnist_ember.txt"
log "MNIST CNN epoch (PyTorch)"; timeout 90 python3 bench/peers/torch_mnist.py $MNIST --device cuda 2>&1 | tee "$OUT/mnist_torch.txt"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
log "done"
