#!/usr/bin/env bash
# A/B of the CUDA decode and prefill speed between a committed revision and the working tree, on one GPU
# machine in one call (timings from different machines are not comparable). Before the call, here:
#   rm -rf .carry/ab && mkdir -p .carry/ab && git archive REV CMakeLists.txt engine kernels app | tar -x -C .carry/ab
# then: run(command="bash tools/device_ab.sh", carry=[".carry"]). Prints, for each tree, the graph-replay and
# in-graph decode lines of mamba-cuda-profile and the prefill time, for AB_CONFIGS (default "2.7b 130m").
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/device_common.sh
device_setup
[ -f .carry/ab/CMakeLists.txt ] || { echo "no .carry/ab tree (see the header)"; exit 2; }
for src in .carry/ab .; do
  b=/tmp/ab-build-$(echo "$src" | tr -dc a-z)
  say "tree $src"
  configure "$b" "$OUT/ab_build.log" "$src" -DMAMBA_TESTS=OFF || { tail -20 "$OUT/ab_build.log"; exit 1; }
  stage build 300 "$OUT/ab_build.log" cmake --build "$b" -j16 --target mamba-cuda-profile || { grep -E "error" "$OUT/ab_build.log" | head; exit 1; }
  for c in ${AB_CONFIGS:-2.7b 130m}; do
    stage "profile $c" 200 "$OUT/ab_profile.log" "$b/bin/mamba-cuda-profile" --config "$c" --dtype bf16 --prompt-len 8192 --steps 64
    grep -E "^prefill T|graph replay|per launch" "$OUT/ab_profile.log" | tail -16 | sed "s|^|  $src $c: |" | tee -a "$S"
    : >"$OUT/ab_profile.log"
  done
done
