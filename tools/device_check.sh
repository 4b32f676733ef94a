#!/usr/bin/env bash
# Build, test and benchmark the CUDA backend on the lent GPU machine, in one call:
#   run(command="BUDGET=500 bash tools/device_check.sh", carry=[".carry"])
# .carry/debs holds the dependencies (tools/device_common.sh); .carry/bin/mamba-app-bench.xz, when present, is
# the app's own speed benchmark built on a machine with Qt 6 Core (cmake --build build --target mamba-app-bench,
# stripped, xz-compressed), run here on the Qt runtime from the debs. With .carry/ab/base (a revision to compare
# against, made here with
#   mkdir -p .carry/ab/base && git archive REV CMakeLists.txt engine kernels app backends | tar -x -C .carry/ab/base)
# its mamba-cli bench runs on the same GPU in the same call. Stages run in order of need; with BUDGET=seconds
# those that would start past it are skipped (tools/device_common.sh). DEVICE_QUICK=1: the build, the CUDA
# tests and the 130m benches only. Logs go to $OUT (at most 8 files come back); the summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/device_common.sh
device_setup
QUICK=${DEVICE_QUICK:-0}

# A warm machine keeps build/ between calls, and files copied in can look older than its objects: start clean.
rm -rf build build-base
BL=/tmp/build.log
configure build "$BL" || { tail -40 "$BL"; exit 1; }
targets=(mamba-cli cuda_tests cuda_fault_tests)
[ "$QUICK" = 1 ] || targets+=(engine_tests cuda_lab_tests)
stage build 420 "$BL" cmake --build build -j16 --target "${targets[@]}" || { grep -E "error|Error" "$BL" | head -40; exit 1; }

# Every CUDA test in its own process (a fault cannot take the others down), verbose so the numbers they print
# are in the log; then what failed and the numbers worth keeping.
T="$OUT/tests.log"
stage cuda-tests 300 "$T" ctest --test-dir build -L cuda -j4 -V
grep -E "tests passed|tests failed|\((Failed|SEGFAULT|Timeout|Subprocess aborted)\)|Skipped" "$T" | tail -30 | tee -a "$S"
grep -E "Failure$|error: " "$T" | head -20 | tee -a "$S"
grep -E "^[0-9]+:   (fixture|medium|default|one-kernel|probes|ssd fused|prefill)" "$T" | sed -E 's/^[0-9]+: //' | sort | uniq | tail -150 >>"$S"

B="build/bin/mamba-cli bench --device cuda --dtype bf16 --prompt-len 8192 --gen 256 --json"
stage bench-130m 120 "$OUT/bench_130m.json" $B --config 130m
[ "$QUICK" = 1 ] || stage bench-2.7b 200 "$OUT/bench_2.7b.json" $B --config 2.7b
# Mamba-1 (its own backend: kernels/mamba1_backend.cpp), both runs in one file.
M1="build/bin/mamba-cli bench --device cuda --dtype bf16 --prompt-len 2048 --gen 128 --json"
stage bench-mamba1-130m 120 "$OUT/bench_mamba1.json" $M1 --config mamba1-130m
[ "$QUICK" = 1 ] || stage bench-mamba1-2.8b 200 "$OUT/bench_mamba1.json" $M1 --config mamba1-2.8b
if [ -f .carry/bin/mamba-app-bench.xz ]; then
  APP=/tmp/mamba-app-bench
  python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" .carry/bin/mamba-app-bench.xz $APP
  chmod +x $APP
  ldd $APP | grep "not found" | tee -a "$S"
  stage app-bench-130m 240 "$OUT/app_bench_130m.json" $APP --config 130m --device cuda --tokens 1024 --reps 3
fi

if [ "$QUICK" != 1 ]; then
  stage engine-tests 200 "$T" ctest --test-dir build -L engine -j16 --output-on-failure
  grep -E "tests passed|tests failed|^\s+[0-9]+ - .*\((Failed|SEGFAULT|Timeout|Subprocess aborted)\)" "$T" | tail -12 | tee -a "$S"
  if command -v compute-sanitizer >/dev/null; then
    stage memcheck 200 "$OUT/sanitizer.log" compute-sanitizer --tool memcheck --error-exitcode 9 build/bin/cuda_tests \
      --gtest_filter='CudaTest.Gemv*:CudaTest.SsmStep*:CudaTest.Sampling*:CudaTest.SsdChunked*:CudaTest.SsdRecurrent*:CudaTest.OneKernel*:CudaTest.DeviceReport*:CudaTest.DecodeChainReports*:CudaTest.ProbesMatchCpuOnFixtures:CudaTest.ChainProbes*'
    tail -3 "$OUT/sanitizer.log" >>"$S"
    stage memcheck-mamba1 120 "$OUT/sanitizer.log" compute-sanitizer --tool memcheck --error-exitcode 9 build/bin/cuda_tests \
      --gtest_filter='CudaTest.Mamba1*'
    tail -3 "$OUT/sanitizer.log" >>"$S"
    # racecheck: shared-memory hazards in the kernels that exchange through shared memory
    stage racecheck 150 "$OUT/sanitizer.log" compute-sanitizer --tool racecheck --error-exitcode 9 build/bin/cuda_tests \
      --gtest_filter='CudaTest.SsdChunkedMatchesCpu:CudaTest.SsdFusedChunkScanMatchesCpuAndUnfused:CudaTest.GatedRmsNormWithSkip:CudaTest.GemvWithFusedNorms'
    tail -3 "$OUT/sanitizer.log" >>"$S"
  fi
  stage cuda-lab-tests 120 "$T" build/bin/cuda_lab_tests
  grep -E "^\[  (PASSED|FAILED) " "$T" | tail -4 | tee -a "$S"
  if [ -d .carry/ab/base ]; then  # the same benches from the revision compared against, same GPU
    AB="$OUT/base_bench.log"
    configure build-base "$BL" .carry/ab/base -DMAMBA_TESTS=OFF &&
      stage build-base 300 "$BL" cmake --build build-base -j16 --target mamba-cli &&
      for c in 130m 2.7b; do
        stage "base-bench-$c" 200 "$AB" build-base/bin/mamba-cli bench --device cuda --dtype bf16 --prompt-len 8192 --gen 256 --json --config $c
      done
    grep -E '"(model|decode_tok_s|decode_single_step_tok_s|prefill_tok_s|decode_fraction_of_bound|prefill_fraction_of_bound)"' "$AB" | tee -a "$S"
  fi
fi

summarize_benches
[ -f "$OUT/app_bench_130m.json" ] && cat "$OUT/app_bench_130m.json" >>"$S"
echo
cat "$S"
