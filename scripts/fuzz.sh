#!/usr/bin/env bash
# Builds Ember's libFuzzer targets (tests/fuzz/, clang -fsanitize=fuzzer,address,undefined) and
# runs each for N seconds, one after another on one core, with memory bounded at 1 GiB.
#   scripts/fuzz.sh [seconds] [target...]   default 30 s, every target
#   scripts/fuzz.sh --regressions           only replay tests/fuzz/regressions/ (and the seeds)
# Environment: EMBER_FUZZ_BUILD (build dir, default build-fuzz), EMBER_FUZZ_JOBS (build -j, default 1).
# New corpus entries go to $EMBER_FUZZ_BUILD/corpus/<target> (not committed); crashes to
# $EMBER_FUZZ_BUILD/crashes/<target>-crash-*, and the script exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${EMBER_FUZZ_BUILD:-build-fuzz}
jobs=${EMBER_FUZZ_JOBS:-1}
seconds=30
replay_only=0
if [[ $# -gt 0 && $1 == --regressions ]]; then replay_only=1; shift
elif [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then seconds=$1; shift
fi
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(fuzz_idx fuzz_idx_gz fuzz_safetensors fuzz_image fuzz_image_transforms fuzz_checkpoint fuzz_segment
                                 fuzz_bert_config fuzz_bert_tokenizer fuzz_word2vec fuzz_text_files
                                 fuzz_image_folder fuzz_review_corpus)

cxx=${CXX:-}
if [[ -z $cxx || $cxx != *clang* ]]; then cxx=$(command -v clang++ || command -v clang++-14 || true); fi
if [[ -z $cxx ]]; then
  echo "fuzz.sh: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
cmake -S tests/fuzz -B "$build" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
cmake --build "$build" -j"$jobs" --target "${targets[@]}"

status=0
mkdir -p "$build/crashes"
for t in "${targets[@]}"; do
  seeds=tests/fuzz/corpus/$t
  regress=tests/fuzz/regressions/$t
  # Replay committed crash inputs first: each must now run clean.
  if [[ -d $regress ]] && compgen -G "$regress/*" >/dev/null; then
    if ! "$build/$t" -rss_limit_mb=1024 "$regress"/* >"$build/$t.regressions.log" 2>&1; then
      echo "fuzz.sh: $t: a committed regression input fails again (see $build/$t.regressions.log)" >&2
      status=1
    fi
  fi
  [[ $replay_only == 1 ]] && { "$build/$t" -rss_limit_mb=1024 "$seeds"/* >/dev/null 2>&1 || status=1; continue; }
  work=$build/corpus/$t
  mkdir -p "$work"
  dict=()
  [[ -f tests/fuzz/dict/$t.dict ]] && dict=(-dict="tests/fuzz/dict/$t.dict")
  start=$SECONDS
  if "$build/$t" "$work" "$seeds" "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=1024 \
       -timeout=10 -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" >"$build/$t.log" 2>&1; then
    result=ok
  else
    result="CRASH (see $build/$t.log and $build/crashes/)"
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$t.log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$build/$t.log" | tail -1 || true)
  echo "fuzz.sh: $t: $((SECONDS - start)) s, $execs executions, $cov, corpus $(ls "$work" | wc -l) files: $result"
done
exit $status
