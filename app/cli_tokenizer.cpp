// mamba-cli tokenize / detokenize: the tokenizer on its own, for scripts and for checking against HF.
//   tokenize   --tokenizer FILE_OR_DIR (--text S | --text-file F)   -> one line, a JSON array of ids
//   detokenize --tokenizer FILE_OR_DIR --ids 1,2,3 [--skip-special]  -> the text, then a newline
// Errors propagate to main(): usage errors exit 2, anything else exits 1 with one line on stderr.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "app/cli_args.h"
#include "app/cli_common.h"
#include "engine/error.h"
#include "engine/json_lenient.h"
#include "engine/tokenizer.h"

namespace mamba::cli {
namespace {

void write_stdout(const std::string& s) {
  // fwrite, not puts: decoded text may contain NUL bytes.
  if (std::fwrite(s.data(), 1, s.size(), stdout) != s.size() || std::fflush(stdout) != 0) throw Error("cannot write to standard output");
}

Tokenizer tokenizer_arg(const Args& args, const char* command) {
  if (!args.has("--tokenizer")) throw UsageError(std::string(command) + " needs --tokenizer FILE_OR_DIR");
  return Tokenizer::from_file(args.str("--tokenizer"));
}

}  // namespace

int run_tokenize(int argc, char** argv) {
  const Args args(argc, argv, {"--tokenizer", "--text", "--text-file"}, {});
  if (args.has("--text") == args.has("--text-file")) throw UsageError("tokenize needs exactly one of --text S or --text-file F");
  const Tokenizer tok = tokenizer_arg(args, "tokenize");
  const std::string text = args.has("--text") ? args.str("--text") : read_text_file(args.str("--text-file"));
  write_stdout(nlohmann::json(tok.encode(text)).dump() + "\n");
  return 0;
}

int run_detokenize(int argc, char** argv) {
  const Args args(argc, argv, {"--tokenizer", "--ids"}, {"--skip-special"});
  if (!args.has("--ids")) throw UsageError("detokenize needs --ids 1,2,3");
  const std::vector<int32_t> ids = args.ids("--ids");
  const Tokenizer tok = tokenizer_arg(args, "detokenize");
  write_stdout(tok.decode(ids, args.has("--skip-special")) + "\n");
  return 0;
}

}  // namespace mamba::cli
