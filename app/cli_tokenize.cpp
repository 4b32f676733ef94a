// mamba-cli tokenize: text to ids with a model's tokenizer, one line holding a JSON array (for scripts
// and for checking against HF).
#include <nlohmann/json.hpp>

#include "app/cli_command.h"
#include "app/cli_common.h"
#include "engine/json_lenient.h"

namespace mamba::cli {

namespace {

struct TokenizeArgs {
  std::string tokenizer, text, text_file;
  CLI::Option* text_option = nullptr;
  CLI::Option* file_option = nullptr;
};

int run(const TokenizeArgs& a) {
  if ((a.text_option->count() > 0) == (a.file_option->count() > 0))
    throw UsageError("tokenize needs exactly one of --text S or --text-file F");
  const Tokenizer tok = Tokenizer::from_file(a.tokenizer);
  const std::string text = a.text_option->count() ? a.text : read_text_file(a.text_file);
  write_stdout(nlohmann::json(tok.encode(text)).dump() + "\n");
  return 0;
}

}  // namespace

void add_tokenize(Commands& commands) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* sub = commands.add("tokenize", "text to token ids, as a JSON array", [a] { return run(*a); });
  sub->add_option("--tokenizer", a->tokenizer, "tokenizer.json, or the model folder holding it")->type_name("FILE_OR_DIR")->required();
  a->text_option = sub->add_option("--text", a->text, "the text")->type_name("S");
  a->file_option = sub->add_option("--text-file", a->text_file, "a file holding the text")->type_name("F");
}

}  // namespace mamba::cli
