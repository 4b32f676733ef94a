#!/usr/bin/env bash
# Prefill work on the lent GPU machine in one call (lighter than device_check.sh: no engine tests, no HF peer):
#   run(command="bash tools/device_prefill.sh", carry=[".carry"])
# Builds cuda_tests, mamba-cli and mamba-cuda-profile; runs the CUDA tests (memcheck on the SSD ones),
# the 2.7b and 130m benches and profiles, A/B benches of the prefill switches, and one ncu pass over the
# fused chunk-scan kernel. Logs go to $OUT; the last lines printed are a short summary.
# Stages past PREFILL_BUDGET_S seconds (default 380) are skipped, so the call ends inside its limit.
set -uo pipefail
cd "$(dirname "$0")/.."
BUDGET=${PREFILL_BUDGET_S:-380}
BLOG=/tmp/prefill_build.log  # appended to tests.log: at most 8 files come back from $OUT
source tools/device_common.sh
device_setup
# Its own build folder: device_check.sh builds ./build from whatever snapshot of the tree its call carried,
# and objects built there can be newer than sources edited since, so ninja skips them (stale binaries;
# seen once while two people shared the machine).
B=build-prefill

configure $B "$BLOG" || { tail -40 "$BLOG"; exit 1; }
stage build 240 "$BLOG" cmake --build $B -j16 --target mamba-cli cuda_tests mamba-cuda-profile || {
  grep -E "error|Error" "$BLOG" | head -40
  exit 1
}

T="$OUT/tests.log"
cat "$BLOG" >>"$T"
# The SSD / prefill tests first, with their numbers, then the whole CUDA suite.
stage ssd-tests 90 "$T" $B/bin/cuda_tests --gtest_filter='*Ssd*:*Prefill*:*Fixtures*:*Medium*:*ChunkedEquals*'
grep -E "^\[  (FAILED|PASSED) |^  (ssd|prefill|fixture|medium)" "$T" | sort | uniq >>"$S"
grep -E "Failure|Expected|Which is|moved|did not move" "$T" | head -30 >>"$S"
stage cuda-tests 150 "$T" ctest --test-dir $B -L cuda -j4 --output-on-failure
grep -E "tests passed|tests failed|\(Failed\)|\(SEGFAULT\)|\(Timeout\)" "$T" | tail -20 | tee -a "$S"

stage bench-2.7b 100 "$OUT/bench_2.7b.json" $B/bin/mamba-cli bench --config 2.7b --device cuda --dtype bf16 --prompt-len 8192 --gen 256 --json
stage profile-2.7b 100 "$OUT/profile_2.7b.txt" $B/bin/mamba-cuda-profile --config 2.7b --dtype bf16 --prompt-len 8192 --steps 16
stage bench-130m 60 "$OUT/bench_130m.json" $B/bin/mamba-cli bench --config 130m --device cuda --dtype bf16 --prompt-len 8192 --gen 256 --json
stage profile-130m 60 "$OUT/profile_130m.txt" $B/bin/mamba-cuda-profile --config 130m --dtype bf16 --prompt-len 8192 --steps 16

# Same-run A/B of the prefill switches and fused block shapes (WN,HB), 2.7b prefill only (--gen 2);
# each shape's fused tests too.
AB="$OUT/ab.log"
for v in MAMBA_CUDA_FUSED_SCAN=0 MAMBA_CUDA_GATE_F32=1 ${PREFILL_SHAPES:-MAMBA_CUDA_FUSED_SHAPE=1,1 MAMBA_CUDA_FUSED_SHAPE=1,2}; do
  stage "ab $v" 60 "$AB" env "$v" $B/bin/mamba-cli bench --config 2.7b --device cuda --dtype bf16 --prompt-len 8192 --gen 2 --reps 5 --json
done
for shape in 1,1 2,1 1,2 2,2; do  # every block shape computes the same function
  stage "tests shape $shape" 60 "$T" env MAMBA_CUDA_FUSED_SHAPE=$shape $B/bin/cuda_tests --gtest_filter='*SsdFused*:*FusedPrefill*' &&
    say "tests shape $shape passed"
done
python3 - "$AB" <<'PY' | tee -a "$S"
import json, re, sys
txt = open(sys.argv[1]).read()
for part in txt.split("---- ")[1:]:
    head = part.splitlines()[0]
    m = re.search(r"\{.*\}", part, re.S)
    if not m:
        print("ab", head[:60], "no json"); continue
    j = json.loads(m.group(0))
    print(f"ab {head.split()[1].rstrip(':')}: prefill {j['prefill_seconds']*1e3:.1f} ms = {j['prefill_tok_s']:.0f} tok/s ({100*j['prefill_fraction_of_bound']:.1f}% of bound)")
PY

if command -v compute-sanitizer >/dev/null; then
  stage memcheck 90 "$T" compute-sanitizer --tool memcheck --error-exitcode 9 $B/bin/cuda_tests --gtest_filter='CudaTest.SsdFused*:CudaTest.SsdChunked*:CudaTest.Prefill*'
  stage memcheck-2,2 60 "$T" env MAMBA_CUDA_FUSED_SHAPE=2,2 compute-sanitizer --tool memcheck --error-exitcode 9 $B/bin/cuda_tests \
    --gtest_filter='CudaTest.SsdFused*'
  grep "ERROR SUMMARY" "$T" | tail -2 >>"$S"
fi
# One launch of each fused shape (the second forward's first layer), with the stall breakdown (raw page).
NCU="$OUT/ncu.txt"
if command -v ncu >/dev/null; then
  # one launch of each prefill kernel of ours (second forward, first layer)
  stage "ncu kernels" 60 "$NCU" ncu --clock-control none -k regex:'conv1d_silu|rmsnorm_vec4|gated_norm_finish' --launch-skip 195 --launch-count 3 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis $B/bin/mamba-cli bench --config 2.7b --device cuda --dtype bf16 --prompt-len 8192 --gen 1 --reps 1 --json
  if command -v cuobjdump >/dev/null; then  # SASS opcode histogram of the fused kernel (what its instructions are)
    cuobjdump -sass $B/kernels/CMakeFiles/mamba_cuda.dir/ssd_chunk_scan_fused.cu.o 2>&1 |
      awk '/Function :/{f = index($0, "fused_kernelI13__nv_bfloat16Li64ELi1ELi1ELi4E") > 0} f && /\/\*[0-9a-f]+\*\//{
        sub(/.*\/\*[0-9a-f]+\*\/[ \t]+/, ""); if ($1 ~ /^@/) $1 = ""; split($0, w, /[ .;]+/); for (i = 1; i <= length(w); i++) if (w[i] != "") { print w[i]; break } }' |
      sort | uniq -c | sort -rn | head -40 | sed 's/^/  sass /' >>"$NCU"
  fi
  for shape in ${NCU_SHAPES:-1,1}; do
    stage "ncu $shape" 60 "$NCU" env MAMBA_CUDA_FUSED_SHAPE=$shape ncu --clock-control none -k regex:ssd_chunk_scan_fused --launch-skip 64 --launch-count 1 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats --section WarpStateStats \
      --section ComputeWorkloadAnalysis --section InstructionStats --section SchedulerStats -o /tmp/ncu_$shape -f \
      $B/bin/mamba-cli bench --config 2.7b --device cuda --dtype bf16 --prompt-len 8192 --gen 1 --reps 1 --json
    ncu --import /tmp/ncu_$shape.ncu-rep --print-summary none >>"$NCU" 2>&1
    ncu --import /tmp/ncu_$shape.ncu-rep --page raw --csv 2>/dev/null | python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
if len(rows) >= 3:
    for name, unit, val in zip(rows[0], rows[1], rows[2]):
        if any(k in name for k in ("stalled", "inst_executed", "pipe_", "gpu__time_duration", "sm__warps_active", "lts__t_bytes", "dram__bytes", "l1tex__t_bytes")):
            print(f"  raw {name} [{unit}] = {val}")' >>"$NCU"
  done
fi

summarize_benches
for p in "$OUT"/profile_*.txt; do
  echo "---- $(basename "$p")" >>"$S"
  grep -E "^prefill T|^  (prefill|ssd):|^  total" "$p" | head -24 >>"$S"
done
echo
cat "$S"
