# Shared by tools/device_check.sh and tools/device_ab.sh (sourced, not run): the summary file, the timed
# stages, the engine's Debian dependencies unpacked into a prefix, the CMake configure line and the bench
# summary. The GPU machine's image has CUDA, CMake and a compiler but none of the engine's Debian
# dependencies, so .carry/debs holds them (apt-get download libopenblas0-openmp libopenblas-openmp-dev
# libgfortran5 libgtest-dev libgmock-dev nlohmann-json3-dev libutf8proc-dev libutf8proc2 libcli11-dev libxxhash-dev, and
# for a mamba-app-bench built elsewhere libqt6core6 libicu72 libdouble-conversion3 libpcre2-16-0 libb2-1);
# they are unpacked into /opt/mamba-deps, never into /.
OUT=${OUT:-/tmp/device_out}
mkdir -p "$OUT"
S="$OUT/summary.txt"
: >"$S"
say() { echo "== $*" | tee -a "$S"; }

# stage NAME TIMEOUT LOG CMD...: runs CMD with a time limit, appending to LOG. With BUDGET set (seconds
# since the script started), stages that would start past it are skipped and the last one is cut short.
stage() {
  local name=$1 limit=$2 log=$3
  shift 3
  if [ -n "${BUDGET:-}" ]; then
    if ((SECONDS + 10 > BUDGET)); then
      say "$name: skipped (budget)"
      return 99
    fi
    ((SECONDS + limit > BUDGET)) && limit=$((BUDGET - SECONDS))
  fi
  local t0=$SECONDS
  echo "---- $name: $*" >>"$log"
  timeout "$limit" "$@" >>"$log" 2>&1
  local rc=$?
  say "$name: rc=$rc in $((SECONDS - t0)) s"
  return $rc
}

device_setup() {  # GPU and tool versions into the summary; the dependencies; sets DEPS, L, GEN
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
}

configure() {  # configure BUILD_DIR LOG [SOURCE_DIR [CMAKE_ARGS...]]: Release, no GUI, sm_90, the dependencies from the prefix
  local build=$1 log=$2 src=${3:-.}
  shift 2
  (($# > 0)) && shift
  stage configure 120 "$log" cmake -S "$src" -B "$build" "${GEN[@]}" "$@" -DCMAKE_BUILD_TYPE=Release -DMAMBA_GUI=OFF -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DMAMBA_BLAS_LIBRARIES="$L/openblas-openmp/libopenblas.so" -DCBLAS_INCLUDE_DIR="$DEPS/usr/include/x86_64-linux-gnu/openblas-openmp" \
    -DUTF8PROC_INCLUDE_DIR="$DEPS/usr/include" -DUTF8PROC_LIBRARY="$L/libutf8proc.so" -DXXHASH_INCLUDE_DIR="$DEPS/usr/include" \
    -Dnlohmann_json_DIR="$DEPS/usr/share/cmake/nlohmann_json" -DGTest_DIR="$L/cmake/GTest" -DCLI11_DIR="$DEPS/usr/share/cmake/CLI11"
}

summarize_benches() {  # one line per bench JSON in $OUT, into the summary
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
    print(f"{name}: prefill {j['prefill_seconds']*1e3:.1f} ms = {j['prefill_tok_s']:.0f} tok/s (bound {j['prefill_bound_tok_s']:.0f}, "
          f"{100*j['prefill_fraction_of_bound']:.1f}%), decode {j['decode_tok_s']:.1f} tok/s (bound {j['decode_bound_tok_s']:.1f}, "
          f"{100*j['decode_fraction_of_bound']:.1f}%; one step per call {j.get('decode_single_step_tok_s', 0):.1f}, {j.get('decode_path', '')}), "
          f"bw {j['memory_bandwidth_gbs']:.0f} GB/s, gemm {j['matmul_gflops']/1e3:.0f} TFLOP/s, "
          f"peak mem {j['peak_memory_bytes']/1e9:.2f} GB")
PY
}
