#!/usr/bin/env bash
# Installs the Debian packages Ember needs (third_party/debian-packages.txt says why each one).
#   bash scripts/install_deps.sh            build + test + examples
#   bash scripts/install_deps.sh --peers    also libtorch/PyTorch, the benchmark peers
#   bash scripts/install_deps.sh --dry-run  only print what is missing
# Idempotent: when everything is installed it runs no apt-get at all (about a tenth of a second);
# otherwise it runs `apt-get update` once and installs only the missing packages. Uses sudo when
# not root. The CUDA toolkit is not a Debian package here: install it from NVIDIA if you want the
# GPU backend (kernels/ builds when nvcc is found).
set -euo pipefail

packages=(
  build-essential cmake pkg-config libeigen3-dev doctest-dev libstb-dev zlib1g-dev
  libcli11-dev nlohmann-json3-dev libopencc-dev opencc python3-jieba libcairo2-dev
  clang libclang-rt-14-dev
)
peer_packages=(libtorch-dev python3-torch python3-gensim python3-sklearn libopenblas0-pthread)

dry_run=0
for arg in "$@"; do
  case "$arg" in
    --peers) packages+=("${peer_packages[@]}") ;;
    --dry-run) dry_run=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install_deps.sh: unknown option '$arg' (expected --peers, --dry-run or --help)" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install_deps.sh: this script needs a Debian-based system (dpkg + apt-get)." >&2
  echo "Install the equivalents of these packages by hand: ${packages[*]}" >&2
  exit 1
fi

# One dpkg-query for all packages: fast, and needs no root and no network. (It exits non-zero
# when it has never heard of a package; that package is then simply missing.)
declare -A installed=()
while read -r name status; do
  [[ "$status" == "installed" ]] && installed[$name]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
missing=()
for p in "${packages[@]}"; do
  [[ -n "${installed[$p]:-}" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install_deps.sh: all ${#packages[@]} packages are installed."
  exit 0
fi
echo "install_deps.sh: missing: ${missing[*]}"
if [[ $dry_run -eq 1 ]]; then
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install_deps.sh: not root and sudo is not available; run as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install_deps.sh: installed ${missing[*]}"
