#!/usr/bin/env bash
# mamba-cuda-profile of the working tree on the GPU machine, for PROFILE_CONFIGS (default "130m 2.7b")
# at PROFILE_PROMPT tokens (default 8192); MAMBA_PROFILE_VARIANTS passes through (decode variants, see
# kernels/tools/cuda_profile.cpp). run(command="bash tools/device_profile.sh", carry=[".carry"]).
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/device_common.sh
device_setup
b=/tmp/profile-build
configure "$b" "$OUT/profile_build.log" . -DMAMBA_TESTS=OFF || { tail -20 "$OUT/profile_build.log"; exit 1; }
stage build 300 "$OUT/profile_build.log" cmake --build "$b" -j16 --target mamba-cuda-profile || { grep -E "error" "$OUT/profile_build.log" | head; exit 1; }
for c in ${PROFILE_CONFIGS:-130m 2.7b}; do
  stage "profile $c" 300 "$OUT/profile_$c.txt" "$b/bin/mamba-cuda-profile" --config "$c" --dtype bf16 --prompt-len "${PROFILE_PROMPT:-8192}" --steps 64
  grep -E "^prefill T|graph replay|timeline|^    [a-z_ ]+ +[-0-9]|per launch|first kernel" "$OUT/profile_$c.txt" | sed "s|^|  $c: |" | tee -a "$S"
done
