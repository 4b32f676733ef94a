#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install what is missing (apt), build, then
#   run   start mamba-studio on the embedded default model
#   test  run the whole test suite (what CI runs), then the sanitized cancel tests and bounded fuzzing of
#         tools/sanitize.sh ci (MAMBA_SANITIZE_MODE=all: the full sanitizer pass; MAMBA_SKIP_SANITIZE=1: none)
# Extra CMake arguments: MAMBA_CMAKE_ARGS="-DMAMBA_CUDA=OFF ..."
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
case "$mode" in run|test) ;; *) echo "usage: tools/bootstrap.sh run|test" >&2; exit 2 ;; esac

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
pkgs="cmake make g++ pkg-config git nlohmann-json3-dev libopenblas-openmp-dev libutf8proc-dev libzip-dev libgtest-dev libgmock-dev libcli11-dev libxxhash-dev
      qt6-base-dev qt6-svg-dev libqcustomplot-dev libqcustomplot2.1-qt6 libgl-dev fonts-dejavu-core clang-format
      clang libclang-rt-14-dev libomp-dev"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi

# shellcheck disable=SC2086
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${MAMBA_CMAKE_ARGS:-}
cmake --build build -j"$(nproc)"

if [ "$mode" = run ]; then
  if [ -x build/bin/mamba-studio ]; then exec build/bin/mamba-studio "${@:2}"; fi
  echo "mamba-studio was not built (no Qt 6?); running the command line instead" >&2
  exec build/bin/mamba-cli generate -i "ROMEO:" -n 200 -t 0.8
fi
export QT_QPA_PLATFORM=offscreen
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 600
# The checking build, sized for CI (docs/RELIABILITY.md): ASan + UBSan over the threaded cancel tests and bounded
# fuzzing of every reader. MAMBA_SANITIZE_MODE=all: the whole engine suite under ASan + UBSan, and TSan.
[ -n "${MAMBA_SKIP_SANITIZE:-}" ] || tools/sanitize.sh "${MAMBA_SANITIZE_MODE:-ci}"
