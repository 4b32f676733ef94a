#!/usr/bin/env bash
# The checking builds of the test command (tools/bootstrap.sh test runs them after the main suite):
#   asan  clang, AddressSanitizer + UndefinedBehaviorSanitizer (leaks included), in build-asan: the whole
#         engine suite (the command-line tests run the sanitized mamba-cli), then every libFuzzer target
#         for FUZZ_SECONDS from its seed corpus (tests/fuzz/corpus)
#   tsan  clang, ThreadSanitizer, in build-tsan: the threaded tests — cancel_tests (prefill, load and
#         generation cancelled from other threads) and worker_tests (the GUI worker's tests,
#         EngineWorkerTest and HardeningTest, without the widgets). OpenMP is checked through LLVM's
#         Archer tool; Qt is not instrumented, so tools/tsan.supp suppresses reports whose stacks pass
#         through it.
#   ci    what the test command runs (sized for CI's time limit on 2 cores): the ASan + UBSan build of the
#         engine, cancel_tests and the fuzz targets only; cancel_tests (load, prefill and generation cancelled
#         from other threads, 1,000 random cancellations; not the 1M-token prompt) and every fuzz target for
#         FUZZ_SECONDS (default 3 here)
# Any sanitizer report fails the run. Usage: tools/sanitize.sh [ci|asan|tsan|all|build-asan-only]
# Environment: FUZZ_SECONDS (default 10), JOBS (default nproc), MAMBA_SANITIZE_CMAKE_ARGS (extra CMake args).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
jobs=${JOBS:-$(nproc)}
fuzz_seconds=${FUZZ_SECONDS:-10}
[[ $what == ci ]] && fuzz_seconds=${FUZZ_SECONDS:-3}
fuzz_targets=(fuzz_safetensors fuzz_config fuzz_tokenizer_json fuzz_encoder fuzz_gguf fuzz_torch_zip fuzz_pickle fuzz_mambac fuzz_snapshot)
asan_env=(ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
# -O1 and line tables only: the builds exist to run the checks, so compile time matters more than speed.
# shellcheck disable=SC2206
common=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG -Wno-pass-failed" -DMAMBA_CUDA=OFF ${MAMBA_SANITIZE_CMAKE_ARGS:-})

if [[ $what == asan || $what == all || $what == build-asan-only || $what == ci ]]; then
  cmake -S . -B build-asan "${common[@]}" -DMAMBA_GUI=OFF -DMAMBA_SANITIZE=address,undefined -DMAMBA_FUZZ=ON \
    -DMAMBA_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
  if [[ $what == ci ]]; then
    cmake --build build-asan -j"$jobs" --target cancel_tests "${fuzz_targets[@]}"
  else
    cmake --build build-asan -j"$jobs" --target engine_tests cancel_tests mamba-cli "${fuzz_targets[@]}"
  fi
fi
if [[ $what == ci ]]; then
  echo "== ASan + UBSan: cancel_tests and the fuzz targets (${fuzz_seconds} s each); tools/sanitize.sh all for the whole engine suite and TSan"
  # the long-prompt test runs in the plain build; sanitized, it costs CI a minute it does not have
  env "${asan_env[@]}" build-asan/bin/cancel_tests --gtest_filter='-Prefill.MillionToken*'
  env "${asan_env[@]}" ctest --test-dir build-asan -L fuzz --output-on-failure -j"$jobs" --timeout 600
fi
if [[ $what == asan || $what == all ]]; then
  echo "== ASan + UBSan: engine suite and fuzz targets (${fuzz_seconds} s each)"
  # Left out, to stay within CI time (docs/RELIABILITY.md): the randomized tokenizer tests (the libFuzzer
  # targets cover the same code, sanitized), the default model's 200-token greedy continuation (the
  # same kernels as the other reference tests, at length) and bench (bandwidth and GEMM timing).
  env "${asan_env[@]}" ctest --test-dir build-asan -L 'engine|fuzz' -E '^(TokenizerFuzz\.|DefaultModel\.GreedyContinuation|Cli\.BenchJson)' \
    --output-on-failure -j"$jobs" --timeout 900
fi

if [[ $what == tsan || $what == all ]]; then
  echo "== TSan: cancel_tests and the GUI worker tests"
  cmake -S . -B build-tsan "${common[@]}" -DMAMBA_GUI=ON -DMAMBA_SANITIZE=thread -DMAMBA_MULTIVERSION=OFF >/dev/null
  cmake --build build-tsan -j"$jobs" --target cancel_tests worker_tests
  archer=$(clang++ -print-file-name=libarcher.so)
  [[ -f $archer ]] || archer=/usr/lib/llvm-14/lib/libarcher.so
  export TSAN_OPTIONS="suppressions=$PWD/tools/tsan.supp halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1"
  export OMP_TOOL_LIBRARIES=$archer QT_QPA_PLATFORM=offscreen OMP_WAIT_POLICY=passive
  # The 1M-token test runs in the plain and ASan builds; here its cross-thread cancel is Cancel.*'s too.
  build-tsan/bin/cancel_tests --gtest_filter='-Prefill.MillionToken*'
  build-tsan/bin/worker_tests
fi
