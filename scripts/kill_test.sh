#!/usr/bin/env bash
# kill -9 test of crash-safe checkpoints and exact resume (issue #11, docs/RELIABILITY.md).
#
# Trains a tutorial program on a tiny generated data set with a checkpoint after every step
# (--save-every 1) and SIGKILLs it at random moments, N times: each run is killed a random
# 0..M ms after its first own save (so every run makes progress and the kills fall anywhere in
# training, saves included); each new run continues with --resume. After every kill the last
# checkpoint must load (its checksum is verified: `eval`, or `generate` for cgan_mnist, reads it).
# At the end the killed run is resumed a few steps further and compared with an uninterrupted run
# to the same step: last.safetensors and steps.csv (every step's loss) must be identical byte for
# byte. Exit status 0 only if all of that holds.
#
#   scripts/kill_test.sh                       # 100 kills of build/examples/mnist_cnn/mnist_cnn
#   scripts/kill_test.sh -p catdog_cnn -n 10   # the same for another program
#   scripts/kill_test.sh -n 10 -b build-x/examples/mnist_cnn/mnist_cnn -s 7
#
# Options: -p program (mnist_cnn, catdog_cnn, review_sentiment, cgan_mnist), -n kills (100),
# -b binary (default build/examples/<program>/<program>), -w work directory (default: a fresh one
# under /tmp, removed on success), -s seed of the kill times ($RANDOM), -m longest wait before a
# kill in ms (300).
set -euo pipefail

kills=100
prog=mnist_cnn
bin=""
work=""
seed=$RANDOM
max_ms=300
while getopts "p:n:b:w:s:m:" opt; do
  case $opt in
    p) prog=$OPTARG ;;
    n) kills=$OPTARG ;;
    b) bin=$OPTARG ;;
    w) work=$OPTARG ;;
    s) seed=$OPTARG ;;
    m) max_ms=$OPTARG ;;
    *) sed -n '2,21p' "$0"; exit 2 ;;
  esac
done
case $prog in
  mnist_cnn | catdog_cnn | review_sentiment | cgan_mnist) ;;
  *) echo "kill_test: -p must be mnist_cnn, catdog_cnn, review_sentiment or cgan_mnist, got '$prog'" >&2; exit 2 ;;
esac
[[ -n $bin ]] || bin=build/examples/$prog/$prog
[[ -x $bin ]] || { echo "kill_test: no $prog binary at '$bin' (pass -b)" >&2; exit 2; }
(( max_ms >= 1 && max_ms <= 999 )) || { echo "kill_test: -m must be 1..999" >&2; exit 2; }
keep_work=1
if [[ -z $work ]]; then
  work=$(mktemp -d /tmp/ember_kill_test.XXXXXX)
  keep_work=0
fi
mkdir -p "$work"
RANDOM=$seed

# ---- a tiny data set in the program's format -----------------------------------------------------
data=$work/data
mkdir -p "$data"
be32() { printf "\\x$(printf %02x $(( ($1 >> 24) & 255 )))\\x$(printf %02x $(( ($1 >> 16) & 255 )))\\x$(printf %02x $(( ($1 >> 8) & 255 )))\\x$(printf %02x $(( $1 & 255 )))"; }
make_idx() {  # prefix count: random MNIST-format pixels and labels (IDX headers are big-endian)
  local prefix=$1 n=$2 i
  { printf '\x00\x00\x08\x03'; be32 "$n"; be32 28; be32 28; head -c $(( n * 784 )) /dev/urandom; } >"$data/$prefix-images-idx3-ubyte"
  { printf '\x00\x00\x08\x01'; be32 "$n"; for (( i = 0; i < n; i++ )); do printf "\\x0$(( RANDOM % 10 ))"; done; } >"$data/$prefix-labels-idx1-ubyte"
}
make_photos() {  # split count: random 40x32 colour photos (binary PPM) of each class
  local split=$1 n=$2 c i
  for c in Cat Dog; do
    mkdir -p "$data/$split/$c"
    for (( i = 0; i < n; i++ )); do { printf 'P6\n40 32\n255\n'; head -c $(( 40 * 32 * 3 )) /dev/urandom; } >"$data/$split/$c/$i.ppm"; done
  done
}
make_reviews() {  # file count: short reviews of obviously positive or negative words, JSON lines
  local file=$1 n=$2 i
  local pos=(精彩 好看 感人 经典 完美 喜欢) neg=(无聊 难看 失望 垃圾 糟糕 浪费) subj=(这部电影 剧情 演员 导演 画面)
  for (( i = 0; i < n; i++ )); do
    if (( i % 2 )); then w=${pos[i % 6]}; else w=${neg[i % 6]}; fi
    printf '{"content": "%s很%s，%s", "stars": null, "label": %d}\n' "${subj[i % 5]}" "$w" "$w" $(( i % 2 ))
  done >"$data/$file"
}
# 8 steps per epoch (review_sentiment: 12); the epoch count only has to outlast the kills.
args=(train --data "$data" --threads 1 --epochs 100000 --save-every 1)
check=()  # a command that loads the checkpoint (and verifies its checksum)
case $prog in
  mnist_cnn)
    make_idx train 64; make_idx t10k 32
    args+=(--workers 1 --batch-size 8)
    check=(eval --data "$data" --threads 1 --out "$work/eval") ;;
  cgan_mnist)
    make_idx train 64; make_idx t10k 32
    args+=(--workers 1 --batch-size 8)
    check=(generate --threads 1 --digit 3 -o "$work/generated.png") ;;
  catdog_cnn)
    make_photos train 16; make_photos test 4
    args+=(--workers 1 --cache 0 --batch-size 4)
    check=(eval --data "$data" --threads 1 --workers 1 --out "$work/eval") ;;
  review_sentiment)
    make_reviews train.jsonl 96; make_reviews test.jsonl 24
    printf '的\n了\n是\n很\n，\n' >"$work/stop.txt"
    args+=(--batch-size 8 --stopwords "$work/stop.txt")
    check=(eval --data "$data" --threads 1 --out "$work/eval" --stopwords "$work/stop.txt") ;;
esac
run=$work/killed
mkdir -p "$run"
ckpt=$run/last.safetensors
# The step in the checkpoint's safetensors header (at the start of the file: cgan_mnist's are 250 MB).
step_of() { { head -c 262144 "$1" 2>/dev/null | grep -ao '"step":"[0-9]*"' || true; } | head -1 | grep -o '[0-9][0-9]*' || echo 0; }

killed=0 mid_save=0 loaded=0 bad=0 before_first=0 resumes=0 early_exit=0 went_back=0
last_step=0
for (( i = 1; i <= kills; i++ )); do
  extra=()
  if [[ -f $ckpt ]]; then extra=(--resume); resumes=$(( resumes + 1 )); fi
  "$bin" "${args[@]}" --out "$run" "${extra[@]}" >>"$work/killed.out" 2>>"$work/killed.err" &
  pid=$!
  # Wait for this run's first checkpoint (at most 60 s), then a random moment.
  for (( w = 0; w < 6000; w++ )); do
    (( $(step_of "$ckpt") > last_step )) && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  sleep "$(printf '0.%03d' $(( RANDOM % max_ms )))"
  if kill -9 "$pid" 2>/dev/null; then
    killed=$(( killed + 1 ))
    wait "$pid" 2>/dev/null || true
  else
    wait "$pid" && rc=0 || rc=$?
    early_exit=$(( early_exit + 1 ))
    echo "kill_test: run $i ended on its own (exit $rc) before the kill; stderr tail:" >&2
    tail -n 5 "$work/killed.err" >&2
  fi
  # A temporary left next to the checkpoint means the kill landed inside a save.
  if compgen -G "$ckpt.tmp.*" >/dev/null; then mid_save=$(( mid_save + 1 )); fi
  if [[ ! -f $ckpt ]]; then
    before_first=$(( before_first + 1 ))
    continue
  fi
  if "$bin" "${check[@]}" --checkpoint "$ckpt" >/dev/null 2>"$work/eval.err"; then
    loaded=$(( loaded + 1 ))
  else
    bad=$(( bad + 1 ))
    echo "kill_test: after kill $i the checkpoint does not load:" >&2
    cat "$work/eval.err" >&2
    cp "$ckpt" "$work/bad_checkpoint_$i.safetensors"
  fi
  step=$(step_of "$ckpt")
  if (( step < last_step )); then went_back=$(( went_back + 1 )); fi
  last_step=$step
done

# ---- finish a few steps past the last checkpoint, and compare with a run never killed ----------
target=$(( last_step + 3 ))
final_ok=1
if ! "$bin" "${args[@]}" --out "$run" --resume --max-steps "$target" >>"$work/killed.out" 2>>"$work/killed.err"; then
  echo "kill_test: the final --resume failed:" >&2
  tail -n 5 "$work/killed.err" >&2
  final_ok=0
fi
stale=$(compgen -G "$ckpt.tmp.*" | wc -l || true)
"$bin" "${args[@]}" --out "$work/straight" --max-steps "$target" >"$work/straight.out" 2>"$work/straight.err" ||
  { echo "kill_test: the uninterrupted run failed:" >&2; tail -n 5 "$work/straight.err" >&2; final_ok=0; }
same_ckpt=0 same_steps=0
cmp -s "$ckpt" "$work/straight/last.safetensors" && same_ckpt=1
cmp -s "$run/steps.csv" "$work/straight/steps.csv" && same_steps=1

echo "kill_test $prog (seed $seed): $killed kills by SIGKILL ($mid_save inside a save, leaving a temporary), $before_first before the first checkpoint;"
echo "  checkpoint loaded with a valid checksum after $loaded kills, failed after $bad; $resumes runs resumed; $went_back went back a step;"
echo "  resumed to step $target: last.safetensors $( ((same_ckpt)) && echo identical || echo DIFFERENT ), steps.csv $( ((same_steps)) && echo identical || echo DIFFERENT ) to an uninterrupted run; $stale stale temporaries left"
if (( bad == 0 && early_exit == 0 && went_back == 0 && final_ok && same_ckpt && same_steps && stale == 0 && killed == kills )); then
  echo "kill_test: PASS"
  (( keep_work )) || rm -rf "$work"
  exit 0
fi
echo "kill_test: FAIL (work directory kept: $work)"
exit 1
