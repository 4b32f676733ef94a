#!/usr/bin/env bash
# Build, test and benchmark the CUDA backend on the lent GPU machine, in one call:
#   run(command="bash tools/device_check.sh", carry=[".carry"])
# Logs go to $OUT (at most 8 files come back); the last lines printed are a short summary.
# The machine image has CUDA, CMake and a compiler but none of the engine's Debian dependencies, so
# .carry/debs holds them (apt-get download libopenblas0-openmp libopenblas-openmp-dev libgfortran5
# libgtest-dev libgmock-dev nlohmann-json3-dev libutf8proc-dev libutf8proc2) and they are unpacked
# into a prefix, never into /.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_out}
mkdir -p "$OUT"
S="$OUT/summary.txt"
: >"$S"
say() { echo "== $*" | tee -a "$S"; }
stage() {  # stage NAME TIMEOUT LOG CMD...: runs CMD with a time limit, appending to LOG
  local name=$1 limit=$2 log=$3
  shift 3
  local t0=$SECONDS
  timeout "$limit" "$@" >>"$log" 2>&1
  local rc=$?
  say "$name: rc=$rc in $((SECONDS - t0)) s"
  return $rc
}

nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee -a "$S"
which nvcc cmake ninja g++ compute-sanitizer 2>&1 | tee -a "$S"
cmake --version | head -1 | tee -a "$S"

DEPS=/opt/mamba-deps
mkdir -p "$DEPS"
for f in .carry/debs/*.deb; do dpkg -x "$f" "$DEPS"; done
L=$DEPS/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$L/openblas-openmp:$L:${LD_LIBRARY_PATH:-}
export PATH=/usr/local/cuda/bin:$PATH
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)

# A warm machine keeps build/ between calls, and files copied in can look older than its objects: start clean.
rm -rf build
stage configure 120 "$OUT/build.log" cmake -S . -B build "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DMAMBA_GUI=OFF -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DMAMBA_BLAS_LIBRARIES="$L/openblas-openmp/libopenblas.so" -DCBLAS_INCLUDE_DIR="$DEPS/usr/include/x86_64-linux-gnu/openblas-openmp" \
  -DUTF8PROC_INCLUDE_DIR="$DEPS/usr/include" -DUTF8PROC_LIBRARY="$L/libutf8proc.so" \
  -Dnlohmann_json_DIR="$DEPS/usr/share/cmake/nlohmann_json" -DGTest_DIR="$L/cmake/GTest" || { tail -40 "$OUT/build.log"; exit 1; }
stage build 300 "$OUT/build.log" cmake --build build -j16 --target mamba-cli cuda_tests mamba-cuda-profile || { grep -E "error|Error" "$OUT/build.log" | head -40; exit 1; }
QUICK=${MAMBA_DEVICE_QUICK:-0}  # 1: CUDA tests, benches and profiles only (no engine tests, no memcheck)
[ "$QUICK" = 1 ] || stage build-engine-tests 120 "$OUT/build.log" cmake --build build -j16 --target engine_tests

T="$OUT/tests.log"
stage cuda-tests 240 "$T" ctest --test-dir build -L cuda -j4 --output-on-failure
grep -E "tests passed|tests failed|\(Failed\)|\(SEGFAULT\)|\(Timeout\)|Skipped" "$T" | tail -30 | tee -a "$S"
stage cuda-tests-numbers 120 "$T" build/bin/cuda_tests --gtest_filter='*Fixtures*:*Ssd*:*Medium*:*ChunkedEquals*:*Default*'
grep -E "^  (ssd|fixture|medium|default)" "$T" | sort | uniq | tail -60 >>"$S"

stage bench-130m 120 "$OUT/bench_130m.json" build/bin/mamba-cli bench --config 130m --device cuda --dtype bf16 --prompt-len 8192 --gen 256 --json
stage bench-2.7b 200 "$OUT/bench_2.7b.json" build/bin/mamba-cli bench --config 2.7b --device cuda --dtype bf16 --prompt-len 8192 --gen 256 --json
stage profile-130m 120 "$OUT/profile_130m.txt" build/bin/mamba-cuda-profile --config 130m --dtype bf16 --prompt-len 8192 --steps 128
stage profile-2.7b 200 "$OUT/profile_2.7b.txt" build/bin/mamba-cuda-profile --config 2.7b --dtype bf16 --prompt-len 8192 --steps 64
if [ "$QUICK" != 1 ]; then
stage engine-tests 150 "$T" ctest --test-dir build -L engine -j16 --output-on-failure
grep -E "tests passed|tests failed" "$T" | tail -2 | tee -a "$S"
if command -v compute-sanitizer >/dev/null; then
  stage memcheck 120 "$OUT/sanitizer.log" compute-sanitizer --tool memcheck --error-exitcode 9 build/bin/cuda_tests \
    --gtest_filter='CudaTest.Gemv*:CudaTest.SsmStep*:CudaTest.Causal*:CudaTest.SsdChunked*:CudaTest.Sampling*:CudaTest.PrefillThenStep*'
  tail -3 "$OUT/sanitizer.log" >>"$S"
fi
fi

# The peer: HF transformers' PyTorch path on the same GPU and shapes, same run (MAMBA_SKIP_HF_PEER=1 skips it).
if [ "${MAMBA_SKIP_HF_PEER:-0}" != 1 ]; then
  stage hf-peer-130m 240 "$OUT/hf_peer.json" env PYTHONUNBUFFERED=1 python3 tools/bench_hf.py --config 130m --device cuda --dtype bf16 \
    --prompt-len 8192 --gen 32
  grep -E "prefill_tok_s|decode_tok_s|peer" "$OUT/hf_peer.json" | tee -a "$S"
fi

python3 - "$OUT" <<'PY' | tee -a "$S"
import json, sys, os
out = sys.argv[1]
for name in ("bench_130m.json", "bench_2.7b.json"):
    p = os.path.join(out, name)
    try:
        txt = open(p).read()
        j = json.loads(txt[txt.index("{"):])
    except Exception as e:
        print(name, "unreadable:", e); continue
    print(f"{name}: prefill {j['prefill_tok_s']:.0f} tok/s (bound {j['prefill_bound_tok_s']:.0f}, {100*j['prefill_fraction_of_bound']:.0f}%), "
          f"decode {j['decode_tok_s']:.1f} tok/s (bound {j['decode_bound_tok_s']:.1f}, {100*j['decode_fraction_of_bound']:.0f}%), "
          f"bw {j['memory_bandwidth_gbs']:.0f} GB/s, gemm {j['matmul_gflops']/1e3:.0f} TFLOP/s, peak mem {j['peak_memory_bytes']/1e9:.2f} GB")
PY
for p in "$OUT"/profile_*.txt; do
  echo "---- $(basename "$p")" >>"$S"
  grep -E "^(prefill T|  step|  graph|  total|decode \(|weight bytes|  in-graph|    )" "$p" >>"$S"
done
echo
cat "$S"
