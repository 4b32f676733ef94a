// mamba-cli detokenize: ids to text with a model's tokenizer; the text, then a newline.
#include "app/cli_command.h"
#include "app/cli_common.h"

namespace mamba::cli {

namespace {

struct DetokenizeArgs {
  std::string tokenizer, ids;
  bool skip_special = false;
};

int run(const DetokenizeArgs& a) {
  const std::vector<int32_t> ids = parse_ids(a.ids);
  const Tokenizer tok = Tokenizer::from_file(a.tokenizer);
  write_stdout(tok.decode(ids, a.skip_special) + "\n");
  return 0;
}

}  // namespace

void add_detokenize(Commands& commands) {
  auto a = std::make_shared<DetokenizeArgs>();
  CLI::App* sub = commands.add("detokenize", "token ids to text", [a] { return run(*a); });
  sub->add_option("--tokenizer", a->tokenizer, "tokenizer.json, or the model folder holding it")->type_name("FILE_OR_DIR")->required();
  sub->add_option("--ids", a->ids, "the ids")->type_name("1,2,3")->required();
  sub->add_flag("--skip-special", a->skip_special, "leave out special tokens");
}

}  // namespace mamba::cli
