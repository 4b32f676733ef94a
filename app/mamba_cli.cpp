// mamba-cli: generate, logits, score, bench, info, tokenize, detokenize, state.
// Errors: exit 1 with one line on stderr; usage errors: exit 2.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "app/cli_common.h"

namespace {

const char* kUsage =
    "usage: mamba-cli COMMAND [options]\n"
    "  generate   [-m DIR] (-i TEXT | --ids 1,2,3) [-n N] [-t TEMP] [--top-k K] [--top-p P] [--min-p P]\n"
    "             [--repeat-penalty R] [--seed S] [--device cpu|cuda] [--scan chunked|recurrent] [--print-ids]\n"
    "             [--save-state FILE]   save the state after the last token (docs/SNAPSHOTS.md)\n"
    "  generate   [-m DIR] --load-state FILE [-n N] [-i TEXT | --ids 1,2,3] [--print-ids] [sampling flags]\n"
    "             continue from a saved state with its sampler and generator (flags override; -i appends)\n"
    "  logits     [-m DIR] --ids 1,2,3 [--device D] [--scan S]\n"
    "  score      [-m DIR] --text-file F [--device D]\n"
    "  bench      [-m DIR | --config 130m|370m|780m|1.3b|2.7b] [--device D] [--dtype f32|bf16|f16]\n"
    "             [--prompt-len T] [--gen N] [--json]\n"
    "  info       [-m DIR]\n"
    "  tokenize   --tokenizer FILE_OR_DIR (--text S | --text-file F)\n"
    "  detokenize --tokenizer FILE_OR_DIR --ids 1,2,3\n"
    "  state info FILE       a snapshot's header as JSON (model id, tokens, sizes, format version)\n"
    "common: --threads N (CPU threads, default all cores); without -m the embedded default model is used\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  using namespace mamba::cli;
  int (*fn)(int, char**) = nullptr;
  if (cmd == "generate") fn = run_generate;
  else if (cmd == "logits") fn = run_logits;
  else if (cmd == "score") fn = run_score;
  else if (cmd == "bench") fn = run_bench;
  else if (cmd == "info") fn = run_info;
  else if (cmd == "tokenize") fn = run_tokenize;
  else if (cmd == "detokenize") fn = run_detokenize;
  else if (cmd == "state") fn = run_state;
  if (!fn) {
    std::fprintf(stderr, "mamba-cli: unknown command '%s'\n%s", cmd.c_str(), kUsage);
    return 2;
  }
  try {
    return fn(argc - 1, argv + 1);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "mamba-cli %s: %s\n", cmd.c_str(), e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "mamba-cli %s: out of memory\n", cmd.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mamba-cli %s: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
