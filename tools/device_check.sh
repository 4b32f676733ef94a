#!/usr/bin/env bash
# Build, test and benchmark the CUDA backend on the lent GPU machine, in one call:
#   run(command="bash tools/device_check.sh", carry=[".carry"])
# Logs go to $OUT (at most 8 files come back); the last lines printed are a short summary.
# Dependencies and the configure line: tools/device_common.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/device_common.sh
device_setup

# A warm machine keeps build/ between calls, and files copied in can look older than its objects: start clean.
rm -rf build
configure build "$OUT/build.log" || { tail -40 "$OUT/build.log"; exit 1; }
stage build 300 "$OUT/build.log" cmake --build build -j16 --target mamba-cli cuda_tests mamba-cuda-profile || { grep -E "error|Error" "$OUT/build.log" | head -40; exit 1; }
QUICK=${MAMBA_DEVICE_QUICK:-0}  # 1: CUDA tests, benches and profiles only (no engine tests, no memcheck)
[ "$QUICK" = 1 ] || stage build-engine-tests 120 "$OUT/build.log" cmake --build build -j16 --target engine_tests

T="$OUT/tests.log"
stage cuda-tests 240 "$T" ctest --test-dir build -L cuda -j4 --output-on-failure
grep -E "tests passed|tests failed|\(Failed\)|\(SEGFAULT\)|\(Timeout\)|Skipped" "$T" | tail -30 | tee -a "$S"
stage cuda-tests-numbers 120 "$T" build/bin/cuda_tests --gtest_filter='*Fixtures*:*Ssd*:*Medium*:*ChunkedEquals*:*Default*:*OneKernel*:*DecodeChain*'
grep -E "^  (ssd|fixture|medium|default|one-kernel)" "$T" | sort | uniq | tail -100 >>"$S"

stage bench-130m 120 "$OUT/bench_130m.json" build/bin/mamba-cli bench --config 130m --device cuda --dtype bf16 --prompt-len 8192 --gen 256 --json
stage bench-2.7b 200 "$OUT/bench_2.7b.json" build/bin/mamba-cli bench --config 2.7b --device cuda --dtype bf16 --prompt-len 8192 --gen 256 --json
stage bench-mamba1-130m 120 "$OUT/bench_mamba1.json" build/bin/mamba-cli bench --config mamba1-130m --device cuda --dtype bf16 --prompt-len 2048 --gen 128 --json
stage bench-mamba1-2.8b 200 "$OUT/bench_mamba1.json" build/bin/mamba-cli bench --config mamba1-2.8b --device cuda --dtype bf16 --prompt-len 2048 --gen 128 --json
stage profile-130m 120 "$OUT/profile_130m.txt" build/bin/mamba-cuda-profile --config 130m --dtype bf16 --prompt-len 8192 --steps 128
stage profile-2.7b 200 "$OUT/profile_2.7b.txt" build/bin/mamba-cuda-profile --config 2.7b --dtype bf16 --prompt-len 8192 --steps 64
if [ "$QUICK" != 1 ]; then
stage engine-tests 150 "$T" ctest --test-dir build -L engine -j16 --output-on-failure
grep -E "tests passed|tests failed" "$T" | tail -2 | tee -a "$S"
if command -v compute-sanitizer >/dev/null; then
  stage memcheck 120 "$OUT/sanitizer.log" compute-sanitizer --tool memcheck --error-exitcode 9 build/bin/cuda_tests \
    --gtest_filter='CudaTest.Gemv*:CudaTest.SsmStep*:CudaTest.Causal*:CudaTest.PrefillConv*:CudaTest.SsdChunked*:CudaTest.Sampling*:CudaTest.PrefillThenStep*:CudaTest.OneKernel*'
  tail -3 "$OUT/sanitizer.log" >>"$S"
  stage memcheck-mamba1 90 "$OUT/sanitizer.log" compute-sanitizer --tool memcheck --error-exitcode 9 build/bin/cuda_tests --gtest_filter='CudaTest.Mamba1*'
  tail -3 "$OUT/sanitizer.log" >>"$S"
  stage memcheck-chain 90 "$OUT/sanitizer.log" compute-sanitizer --tool memcheck --error-exitcode 9 build/bin/cuda_tests --gtest_filter='CudaTest.DecodeChain*'
  tail -3 "$OUT/sanitizer.log" >>"$S"
fi
fi

# The peer: HF transformers' PyTorch path on the same GPU and shapes, same run (MAMBA_SKIP_HF_PEER=1 skips it).
if [ "${MAMBA_SKIP_HF_PEER:-0}" != 1 ]; then
  stage hf-peer-130m 240 "$OUT/hf_peer.json" env PYTHONUNBUFFERED=1 python3 tools/bench_hf.py --config 130m --device cuda --dtype bf16 \
    --prompt-len 8192 --gen 32
  grep -E "prefill_tok_s|decode_tok_s|peer" "$OUT/hf_peer.json" | tee -a "$S"
fi

summarize_benches
for p in "$OUT"/profile_*.txt; do
  echo "---- $(basename "$p")" >>"$S"
  grep -E "^(prefill T|  step|  graph|  total|decode \(|weight bytes|  in-graph|    )" "$p" >>"$S"
done
echo
cat "$S"
