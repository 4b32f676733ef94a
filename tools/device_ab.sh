#!/usr/bin/env bash
# A/B of the CUDA decode and prefill speed between committed revisions and the working tree, on one GPU
# machine in one call (timings from different machines are not comparable). Before the call, here, for each REV:
#   mkdir -p .carry/ab/REV && git archive REV CMakeLists.txt engine kernels app | tar -x -C .carry/ab/REV
# then: run(command="bash tools/device_ab.sh", carry=[".carry"]). With no .carry/ab trees it profiles the
# working tree alone. Prints, for each tree, the prefill time, the graph-replay decode variants
# (AB_VARIANTS, passed as --variants, see kernels/tools/cuda_profile.cpp), the decode timeline and the
# in-graph cost per kernel class of mamba-cuda-profile, for AB_CONFIGS (default "2.7b 130m") and AB_PROMPT
# (prompt length, default 8192); the whole profiles go to $OUT/ab_profile.log.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/device_common.sh
device_setup
shopt -s nullglob
trees=(.carry/ab/*/ .)
for src in "${trees[@]}"; do
  b=/tmp/ab-build-$(echo "$src" | tr -dc a-z0-9)
  say "tree $src"
  configure "$b" "$OUT/ab_build.log" "$src" -DMAMBA_TESTS=OFF || { tail -20 "$OUT/ab_build.log"; exit 1; }
  stage build 300 "$OUT/ab_build.log" cmake --build "$b" -j16 --target mamba-cuda-profile || { grep -E "error" "$OUT/ab_build.log" | head; exit 1; }
  for c in ${AB_CONFIGS:-2.7b 130m}; do
    p=/tmp/ab-profile.txt
    : >"$p"
    stage "profile $c" 300 "$p" "$b/bin/mamba-cuda-profile" --config "$c" --dtype bf16 --prompt-len "${AB_PROMPT:-8192}" --steps 64 \
      ${AB_VARIANTS:+--variants "$AB_VARIANTS"}
    cat "$p" >>"$OUT/ab_profile.log"
    grep -E "^prefill T|graph replay|timeline|^    [a-z_ ]+ +[-0-9]|per launch|first kernel" "$p" | sed "s|^|  $src $c: |" | tee -a "$S"
  done
done
