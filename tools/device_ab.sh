#!/usr/bin/env bash
# A/B of the CUDA decode and prefill speed between committed revisions and the working tree, on one GPU
# machine in one call (timings from different machines are not comparable). Before the call, here, for each REV:
#   mkdir -p .carry/ab/REV && git archive REV CMakeLists.txt engine kernels app | tar -x -C .carry/ab/REV
# then: run(command="bash tools/device_ab.sh", carry=[".carry"]). Prints, for each tree, the graph-replay and
# in-graph decode lines of mamba-cuda-profile and the prefill time, for AB_CONFIGS (default "2.7b 130m") and
# AB_PROMPT (prompt length, default 8192).
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/device_common.sh
device_setup
trees=(.carry/ab/*/ .)
[ -f "${trees[0]}CMakeLists.txt" ] || { echo "no .carry/ab/REV tree (see the header)"; exit 2; }
for src in "${trees[@]}"; do
  b=/tmp/ab-build-$(echo "$src" | tr -dc a-z0-9)
  say "tree $src"
  configure "$b" "$OUT/ab_build.log" "$src" -DMAMBA_TESTS=OFF || { tail -20 "$OUT/ab_build.log"; exit 1; }
  stage build 300 "$OUT/ab_build.log" cmake --build "$b" -j16 --target mamba-cuda-profile || { grep -E "error" "$OUT/ab_build.log" | head; exit 1; }
  for c in ${AB_CONFIGS:-2.7b 130m}; do
    stage "profile $c" 200 "$OUT/ab_profile.log" "$b/bin/mamba-cuda-profile" --config "$c" --dtype bf16 --prompt-len "${AB_PROMPT:-8192}" --steps 64
    grep -E "^prefill T|graph replay|per launch" "$OUT/ab_profile.log" | tail -16 | sed "s|^|  $src $c: |" | tee -a "$S"
    : >"$OUT/ab_profile.log"
  done
done
