#!/usr/bin/env bash
# Ember's benchmark suite against libtorch, in one command (see bench/README.md):
#
#   scripts/bench.sh             # full MNIST epochs, 5 alternation rounds (< 10 min on 2 cores)
#   scripts/bench.sh --quick     # labelled subsets of the epoch, 3 rounds (< 2 min after the build)
#
# Builds ember_bench_models (Ember) and, when libtorch is installed, ember_bench_torch (the peer);
# picks libtorch's better OpenBLAS setting (OPENBLAS_NUM_THREADS=1 or the default) on a short
# calibration run (per case for the calibrated MNIST and cat/dog cases); runs every case in its own process, Ember and libtorch alternately (the order
# flips every round); runs the GPU figures when a CUDA GPU is present; and writes
# bench/results/<machine>-<date>[-quick].{json,md,png}.
#
# Options: --quick, --threads N (2), --rounds R, --machine NAME (hostname), --out DIR
# (bench/results), --build DIR (build-bench), --mnist DIR (found automatically), --no-build,
# --cases "mnist_b32 catdog_step ..." (a subset). Environment: JOBS (build jobs, default 1).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
THREADS=2
ROUNDS=""
MACHINE=$(hostname -s 2>/dev/null || hostname)
OUT_DIR="$ROOT/bench/results"
BUILD="$ROOT/build-bench"
MNIST_DIR="${MNIST_DIR:-}"
DO_BUILD=1
CASES=""
JOBS=${JOBS:-1}

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --threads) THREADS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --machine) MACHINE=$2; shift ;;
    --out) OUT_DIR=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --mnist) MNIST_DIR=$2; shift ;;
    --no-build) DO_BUILD=0 ;;
    --cases) CASES=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case "$THREADS" in ''|*[!0-9]*) echo "bench.sh: --threads needs a number" >&2; exit 2 ;; esac
[ -z "$ROUNDS" ] && ROUNDS=$([ $QUICK = 1 ] && echo 3 || echo 5)
case "$ROUNDS" in ''|*[!0-9]*|0) echo "bench.sh: --rounds needs a positive number" >&2; exit 2 ;; esac
MODE=$([ $QUICK = 1 ] && echo quick || echo full)
QFLAG=()
[ $QUICK = 1 ] && QFLAG=(--quick)
START=$(date +%s)
log() { printf '[bench %4ds] %s\n' "$(($(date +%s) - START))" "$*" >&2; }

# ---- build -----------------------------------------------------------------------------------------
if [ $DO_BUILD = 1 ]; then
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    log "configuring $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_EXAMPLES=OFF -DEMBER_BENCH_COMPILE_ONLY=OFF >/dev/null
  fi
  TARGETS=(ember_bench_models)
  # grep without -q: with pipefail, grep -q's early exit killed cmake with SIGPIPE, the test
  # failed, and a stale peer binary from an older checkout was run instead of being rebuilt.
  HELP=$(cmake --build "$BUILD" --target help 2>/dev/null || true)
  grep -qw ember_bench_torch <<<"$HELP" && TARGETS+=(ember_bench_torch)
  if [ -z "${SKIP_GPU:-}" ] && nvidia-smi -L >/dev/null 2>&1; then
    grep -qw ember_bench_cuda_mnist <<<"$HELP" && TARGETS+=(ember_bench_cuda ember_bench_cuda_mnist)
  fi
  log "building ${TARGETS[*]} (JOBS=$JOBS)"
  for t in "${TARGETS[@]}"; do cmake --build "$BUILD" -j"$JOBS" --target "$t" >/dev/null; done
fi
EMBER_BIN="$BUILD/bench/ember_bench_models"
TORCH_BIN="$BUILD/bench/ember_bench_torch"
[ -x "$EMBER_BIN" ] || { echo "bench.sh: $EMBER_BIN is missing (build failed, or nlohmann_json not installed)" >&2; exit 1; }
HAVE_TORCH=0
if [ -x "$TORCH_BIN" ]; then
  HAVE_TORCH=1
else
  log "libtorch peer not built (install libtorch-dev): Ember's figures only, no ratios"
fi

# ---- data ------------------------------------------------------------------------------------------
if [ -z "$MNIST_DIR" ]; then
  for d in "$ROOT/data/mnist" "$ROOT/../shared/data/mnist" "${EMBER_DATA:-/nonexistent}/mnist"; do
    if ls "$d"/train-images-idx3-ubyte* >/dev/null 2>&1; then MNIST_DIR=$d; break; fi
  done
fi
DUMP="$BUILD/bench-data/mnist"
HAVE_MNIST=0
if [ -n "$MNIST_DIR" ]; then
  if [ ! -f "$DUMP/t10k-labels.i64" ]; then
    log "converting MNIST from $MNIST_DIR with Ember's reader"
    "$EMBER_BIN" dump-mnist "$MNIST_DIR" "$DUMP"
  fi
  HAVE_MNIST=1
else
  log "MNIST not found (scripts/get_data.sh, or --mnist DIR): MNIST rows skipped"
fi

# ---- cases -----------------------------------------------------------------------------------------
if [ -z "$CASES" ]; then
  CASES="catdog_step bilstm_step bert_step wgan_critic_step"
  [ $HAVE_MNIST = 1 ] && CASES="mnist_b32 mnist_b128 $CASES"
  CASES="$CASES ops overhead"
fi
RUN_DIR="$BUILD/bench-runs"
mkdir -p "$RUN_DIR" "$OUT_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
RUNS="$RUN_DIR/$STAMP-$MODE.jsonl"
: >"$RUNS"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
log "machine $MACHINE, $THREADS threads, mode $MODE, $ROUNDS rounds, load average $LOAD"
if awk -v l="${LOAD%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > 0.5 * n) }'; then
  log "WARNING: the machine is busy (load $LOAD on $(nproc) cores): figures will be noisy"
fi

# run FRAMEWORK CASE ROUND [extra args]: one process; a crash or timeout becomes a "failed" record.
run() {
  local fw=$1 c=$2 r=$3; shift 3
  local bin=$EMBER_BIN env=()
  if [ "$fw" = libtorch ]; then
    bin=$TORCH_BIN
    local blas=${CASE_BLAS[$c]:-$BLAS}
    [ "$blas" != default ] && env=(OPENBLAS_NUM_THREADS="$blas")
  fi
  local rc=0
  env "${env[@]}" timeout 1200 "$bin" "$c" --data "$DUMP" --threads "$THREADS" --round "$r" "${QFLAG[@]}" "$@" || rc=$?
  if [ $rc != 0 ]; then
    log "FAILED: $fw $c (exit $rc)"
    printf '{"framework": "%s", "case": "%s", "kind": "model", "group": "%s", "name": "case %s", "shape": "", "status": "failed", "round": %s, "samples_s": [], "note": "exit code %s"}\n' \
      "$fw" "$c" "$c" "$c" "$r" "$rc" >>"${JSON_TARGET:-$RUNS}"
  fi
}

# ---- libtorch at its best: OPENBLAS_NUM_THREADS=1 or the default, whichever is faster here ----------
# Debian's OpenBLAS 0.3.21 does not know the newest Xeons (model 207) and falls back to its generic
# "Prescott" (SSE3) kernels: libtorch's sgemm then runs at ~25 instead of ~120 GFLOP/s. When that
# happens on a CPU with AVX-512 (AVX2), libtorch runs with OPENBLAS_CORETYPE=SkylakeX (Haswell).
BLAS_CORE=""
if [ $HAVE_TORCH = 1 ]; then
  DETECTED=$(OPENBLAS_VERBOSE=2 "$TORCH_BIN" version 2>&1 | sed -n 's/^Core: *//p' | head -1)
  if [ "$DETECTED" = Prescott ] || [ "$DETECTED" = Core2 ]; then
    if grep -qw avx512f /proc/cpuinfo; then BLAS_CORE=SkylakeX
    elif grep -qw avx2 /proc/cpuinfo; then BLAS_CORE=Haswell
    fi
    [ -n "$BLAS_CORE" ] && log "OpenBLAS detects this CPU as $DETECTED: libtorch runs with OPENBLAS_CORETYPE=$BLAS_CORE"
  fi
fi
[ -n "$BLAS_CORE" ] && export OPENBLAS_CORETYPE=$BLAS_CORE
BLAS=default
BLAS_WHY="no libtorch"
# A calibrated case runs with its own better setting (the MNIST epoch wants 1 thread, the cat/dog
# step the default: one setting for both slowed one of them by up to 2x); the other cases take
# the setting that was better over all calibration runs.
declare -A CASE_BLAS=()
CAL_CASES=""
if [ $HAVE_TORCH = 1 ]; then
  CAL="$RUN_DIR/$STAMP-calibration.jsonl"
  : >"$CAL"
  # Calibrate on the run's own model cases (MNIST and cat/dog; --quick: the first only, to stay
  # under 2 minutes); with neither in the run there is nothing to calibrate on.
  for c in mnist_b32 catdog_step; do
    case " $CASES " in *" $c "*) CAL_CASES="$CAL_CASES $c" ;; esac
  done
  [ $QUICK = 1 ] && CAL_CASES=$(echo $CAL_CASES | cut -d' ' -f1)
fi
if [ $HAVE_TORCH = 1 ] && [ -z "$CAL_CASES" ]; then
  BLAS_WHY="default kept: no MNIST or cat/dog case in this run to calibrate on"
elif [ $HAVE_TORCH = 1 ]; then
  log "calibrating libtorch's OpenBLAS threads on:$CAL_CASES (quick runs)"
  SAVED_QFLAG=("${QFLAG[@]}")
  QFLAG=(--quick)
  JSON_TARGET=$CAL
  for setting in default 1; do
    BLAS=$setting
    for c in $CAL_CASES; do run libtorch "$c" 0 --json "$CAL" 2>/dev/null; done
  done
  QFLAG=("${SAVED_QFLAG[@]}")
  unset JSON_TARGET
  BLAS_RESULT=$("$EMBER_BIN" pick-blas "$CAL")
  BLAS=${BLAS_RESULT%% *}
  BLAS_WHY="other cases: ${BLAS_RESULT#* }"
  for c in $CAL_CASES; do
    grep -F "\"case\": \"$c\"" "$CAL" >"$CAL.$c" || true
    r=$("$EMBER_BIN" pick-blas "$CAL.$c")
    CASE_BLAS[$c]=${r%% *}
    BLAS_WHY="$c: ${r%% *}; $BLAS_WHY"
  done
  log "libtorch runs with OPENBLAS_NUM_THREADS=$BLAS ($BLAS_WHY)"
fi

# ---- alternation rounds ----------------------------------------------------------------------------
for r in $(seq 1 "$ROUNDS"); do
  for c in $CASES; do
    # Ops and overhead repeat inside their process (5 repetitions, 3 quick): one round. The rows
    # Ember cannot run yet are libtorch-only figures: three rounds (6 timed steps; quick: one).
    case "$c" in
      ops|overhead) [ "$r" -gt 1 ] && continue ;;
      bilstm_step|bert_step|wgan_critic_step) { [ "$r" -gt 3 ] || { [ $QUICK = 1 ] && [ "$r" -gt 1 ]; }; } && continue ;;
    esac
    order="ember libtorch"
    [ $((r % 2)) = 0 ] && order="libtorch ember"
    for fw in $order; do
      [ "$fw" = libtorch ] && [ $HAVE_TORCH = 0 ] && continue
      log "round $r/$ROUNDS: $fw $c"
      run "$fw" "$c" "$r" --json "$RUNS"
    done
  done
done

# ---- GPU figures (bench_cuda, bench_cuda_mnist and the PyTorch peers) when a CUDA GPU is present ------
DATE=$(date +%Y-%m-%d)
PREFIX="$OUT_DIR/$MACHINE-$DATE$([ $QUICK = 1 ] && echo -quick || true)"
GPU_NOTE="no CUDA GPU on this machine: GPU rows skipped"
if [ -z "${SKIP_GPU:-}" ] && nvidia-smi -L >/dev/null 2>&1; then
  if [ -x "$BUILD/bench/ember_bench_cuda_mnist" ]; then
    GPU_LOG="$PREFIX-gpu.txt"
    log "CUDA GPU found: GPU rows -> $GPU_LOG"
    {
      nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
      timeout 300 "$BUILD/bench/ember_bench_cuda" || echo "ember_bench_cuda failed"
      [ -n "$MNIST_DIR" ] && { timeout 300 "$BUILD/bench/ember_bench_cuda_mnist" "$MNIST_DIR" cuda || echo "ember_bench_cuda_mnist failed"; }
      if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
        timeout 300 python3 "$ROOT/bench/peers/torch_cuda.py" || echo "torch_cuda.py failed"
        [ -n "$MNIST_DIR" ] && { timeout 300 python3 "$ROOT/bench/peers/torch_mnist.py" "$MNIST_DIR" --device cuda || echo "torch_mnist.py failed"; }
      else
        echo "PyTorch with CUDA not importable: GPU peers skipped"
      fi
    } >"$GPU_LOG" 2>&1
    GPU_NOTE="GPU figures in $(basename "$GPU_LOG")"
  else
    GPU_NOTE="CUDA GPU present but Ember was built without its CUDA backend: GPU rows skipped"
  fi
fi
log "$GPU_NOTE"

# ---- report ------------------------------------------------------------------------------------------
BLAS_SETTINGS=$BLAS
for c in "${!CASE_BLAS[@]}"; do BLAS_SETTINGS="$BLAS_SETTINGS, $c ${CASE_BLAS[$c]}"; done
CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
TORCH_VERSION=$([ $HAVE_TORCH = 1 ] && "$TORCH_BIN" version 2>/dev/null || echo none)
GIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD -- include bench 2>/dev/null || GIT="$GIT+local changes"
"$EMBER_BIN" report "$RUNS" "$PREFIX" machine="$MACHINE" date="$DATE" cpu="${CPU:-unknown} ($(nproc) cores)" \
  threads="$THREADS" mode="$MODE, $ROUNDS rounds" load="$LOAD" torch_version="$TORCH_VERSION" git="$GIT" \
  libtorch_openblas="$BLAS_SETTINGS${BLAS_CORE:+, OPENBLAS_CORETYPE=$BLAS_CORE (OpenBLAS 0.3.21 takes this CPU for $DETECTED)}" \
  libtorch_openblas_why="$BLAS_WHY" gpu="$GPU_NOTE" runs="$RUNS" \
  elapsed_s="$(($(date +%s) - START))"
log "done: $PREFIX.md (raw records: $RUNS)"
cat "$PREFIX.md"
