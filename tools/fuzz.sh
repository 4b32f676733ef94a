#!/usr/bin/env bash
# Long runs of the libFuzzer targets (tests/fuzz) at low priority, for docs/RELIABILITY.md: builds
# build-asan as tools/sanitize.sh does (ASan + UBSan + coverage), then runs each target until RUNS
# executions or MAX_SECONDS have passed. The corpus grows in build-asan/fuzz/<target>/corpus (the seeds in
# tests/fuzz/corpus stay untouched), a crash lands in build-asan/fuzz/<target>/artifacts, and one line per
# target (executions, rate, edges and features covered, corpus size) is appended to
# build-asan/fuzz/summary.txt.
# Usage: tools/fuzz.sh [TARGET...]   (targets: safetensors config tokenizer_json encoder gguf torch_zip pickle
#   mambac snapshot; default all)
# Environment: RUNS (default 10000000), MAX_SECONDS (default 0: no limit), MAX_LEN (default 4096), JOBS,
# FUZZ_NO_BUILD=1 (use build-asan as it is, e.g. for a second run beside the first).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-10000000}
seconds=${MAX_SECONDS:-0}
max_len=${MAX_LEN:-4096}
targets=("$@")
((${#targets[@]})) || targets=(safetensors config tokenizer_json encoder gguf torch_zip pickle mambac snapshot)

[[ -n ${FUZZ_NO_BUILD:-} ]] || JOBS=${JOBS:-$(nproc)} tools/sanitize.sh build-asan-only
summary=build-asan/fuzz/summary.txt
for t in "${targets[@]}"; do
  work=build-asan/fuzz/$t
  mkdir -p "$work/corpus" "$work/artifacts"
  log=$work/long_run.log
  # the grown corpus first (new inputs go there), then the seeds: the build tree's copies of the format
  # fixtures (tests/fuzz/CMakeLists.txt) and the target's own corpus in the sources
  corpora=("$work/corpus")
  for c in "$work/seeds" "tests/fuzz/corpus/$t"; do [[ -d $c ]] && corpora+=("$c"); done
  echo "== fuzz_$t: $runs runs${seconds:+ or $seconds s}" | tee -a "$summary"
  start=$(date +%s)
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
    nice -n 19 "build-asan/bin/fuzz_$t" -runs="$runs" -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -dict=tests/fuzz/json.dict -artifact_prefix="$work/artifacts/" "${corpora[@]}" \
    >"$log" 2>&1 && rc=0 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1 || true)
  rate=$(grep -o 'stat::average_exec_per_sec: [0-9]*' "$log" | awk '{print $2}' | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$log" | tail -1 || true)
  echo "fuzz_$t: rc=$rc, ${execs:-?} executions in $(($(date +%s) - start)) s (${rate:-?}/s), ${cov:-no coverage line}, \
$(ls "$work/artifacts" | wc -l) artifacts; $(date -u +%Y-%m-%d) $(git rev-parse --short HEAD)" | tee -a "$summary"
done
