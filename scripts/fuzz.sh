#!/usr/bin/env bash
# Builds Ember's libFuzzer targets (tests/fuzz/, clang -fsanitize=fuzzer,address,undefined) and
# runs each for N seconds with memory bounded at 1 GiB, after replaying its committed crash inputs.
#   scripts/fuzz.sh [seconds] [target...]   default 30 s, every target, one after another (one core)
#   scripts/fuzz.sh --ci [seconds]          what CI runs (scripts/test_all.sh): the one-binary build
#                                           fuzz_all at -O0 (build-fuzz-ci), every target for N s
#                                           (default 30), two at a time
#   scripts/fuzz.sh --regressions           only replay tests/fuzz/regressions/ (and the seeds)
#   --build-only / --no-build (with any of the above): only build, or run what is built
# Environment: EMBER_FUZZ_BUILD (build dir, default build-fuzz, or build-fuzz-ci with --ci),
# EMBER_FUZZ_JOBS (build -j and targets run at once; default 1, or 2 with --ci).
# New corpus entries go to $EMBER_FUZZ_BUILD/corpus/<target> (not committed); crashes to
# $EMBER_FUZZ_BUILD/crashes/<target>-crash-*, and the script exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=30
replay_only=0
ci=0
do_build=1
do_run=1
targets=()
for arg in "$@"; do
  case $arg in
    --regressions) replay_only=1 ;;
    --ci) ci=1 ;;
    --build-only) do_run=0 ;;
    --no-build) do_build=0 ;;
    -*) echo "fuzz.sh: unknown option '$arg' (see the header of $0)" >&2; exit 2 ;;
    *) if [[ $arg =~ ^[0-9]+$ ]]; then seconds=$arg; else targets+=("$arg"); fi ;;
  esac
done
[[ ${#targets[@]} -eq 0 ]] && targets=(fuzz_idx fuzz_idx_gz fuzz_safetensors fuzz_image fuzz_image_transforms fuzz_checkpoint fuzz_segment
                                 fuzz_bert_config fuzz_bert_tokenizer fuzz_word2vec fuzz_text_files
                                 fuzz_image_folder fuzz_review_corpus)
if [[ $ci == 1 ]]; then
  build=${EMBER_FUZZ_BUILD:-build-fuzz-ci}
  jobs=${EMBER_FUZZ_JOBS:-2}
else
  build=${EMBER_FUZZ_BUILD:-build-fuzz}
  jobs=${EMBER_FUZZ_JOBS:-1}
fi

cxx=${CXX:-}
if [[ -z $cxx || $cxx != *clang* ]]; then cxx=$(command -v clang++ || command -v clang++-14 || true); fi
if [[ -z $cxx ]]; then
  echo "fuzz.sh: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
start=$SECONDS
if [[ $do_build == 1 ]]; then
  if [[ $ci == 1 ]]; then
    cmake -S tests/fuzz -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DEMBER_FUZZ_OPT=-O0 >/dev/null
    cmake --build "$build" --target fuzz_all
  else
    cmake -S tests/fuzz -B "$build" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
    cmake --build "$build" -j"$jobs" --target "${targets[@]}"
  fi
  echo "fuzz.sh: build $((SECONDS - start)) s"
fi
[[ $do_run == 1 ]] || exit 0

# fuzz <target> <args...>: the target's binary (or fuzz_all choosing it) with libFuzzer's arguments.
fuzz() {
  local t=$1
  shift
  if [[ $ci == 1 ]]; then EMBER_FUZZ_TARGET=$t "$build/fuzz_all" "$@"; else "$build/$t" "$@"; fi
}

# run_target <target>: replays, then fuzzes; prints one line and returns non-zero on any failure.
run_target() {
  local t=$1 seeds=tests/fuzz/corpus/$1 regress=tests/fuzz/regressions/$1 failed=0
  # Committed crash inputs first: each must now run clean.
  if [[ -d $regress ]] && compgen -G "$regress/*" >/dev/null; then
    if ! fuzz "$t" -rss_limit_mb=1024 "$regress"/* >"$build/$t.regressions.log" 2>&1; then
      echo "fuzz.sh: $t: a committed regression input fails again (see $build/$t.regressions.log)" >&2
      failed=1
    fi
  fi
  if [[ $replay_only == 1 ]]; then
    fuzz "$t" -rss_limit_mb=1024 "$seeds"/* >"$build/$t.seeds.log" 2>&1 || {
      echo "fuzz.sh: $t: a seed input fails (see $build/$t.seeds.log)" >&2
      failed=1
    }
    return $failed
  fi
  # -O0 (--ci) runs an input slower than -O1: a longer limit, so that only a real hang times out.
  local work=$build/corpus/$t dict=() t0=$SECONDS result=ok timeout=10
  [[ $ci == 1 ]] && timeout=20
  mkdir -p "$work"
  [[ -f tests/fuzz/dict/$t.dict ]] && dict=(-dict="tests/fuzz/dict/$t.dict")
  if ! fuzz "$t" "$work" "$seeds" "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=1024 \
       -timeout="$timeout" -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" >"$build/$t.log" 2>&1; then
    result="CRASH (see $build/$t.log and $build/crashes/)"
    failed=1
  fi
  local execs cov
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$t.log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$build/$t.log" | tail -1 || true)
  echo "fuzz.sh: $t: $((SECONDS - t0)) s, $execs executions, $cov, corpus $(ls "$work" | wc -l) files: $result"
  return $failed
}

# Up to $jobs targets at once; each one's status in a file, read when all are done.
mkdir -p "$build/crashes" "$build/status"
rm -f "$build/status"/*
running=0
for t in "${targets[@]}"; do
  if (( running >= jobs )); then
    wait -n || true
    running=$((running - 1))
  fi
  ( run_target "$t" && echo 0 >"$build/status/$t" || echo 1 >"$build/status/$t" ) &
  running=$((running + 1))
done
wait
status=0
for t in "${targets[@]}"; do
  [[ $(cat "$build/status/$t" 2>/dev/null) == 0 ]] || status=1
done
echo "fuzz.sh: ${#targets[@]} targets, $((SECONDS - start)) s in all: $([[ $status == 0 ]] && echo pass || echo FAILED)"
exit $status
