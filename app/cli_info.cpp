// mamba-cli info: a model's configuration, sizes, format and tokenizer source, as JSON.
#include <nlohmann/json.hpp>

#include "app/cli_command.h"
#include "app/cli_common.h"

namespace mamba::cli {

namespace {

int run(const ModelArgs& m) {
  Loaded l = load_model(m);
  const Config& c = l.model->config;
  nlohmann::json out = {{"dir", l.dir},
                        {"format", l.format},
                        {"arch", arch_name(c.arch)},
                        {"layers", c.n_layer},
                        {"d_model", c.d_model},
                        {"heads", c.n_heads},
                        {"head_dim", c.head_dim},
                        {"d_state", c.d_state},
                        {"n_groups", c.n_groups},
                        {"conv_kernel", c.d_conv},
                        {"chunk_size", c.chunk_size},
                        {"vocab_size", c.vocab_size},
                        {"vocab_valid", c.vocab_valid},
                        {"tied_embeddings", c.tie_embeddings},
                        {"params", c.n_params()},
                        {"dtype", l.model->source_dtype},
                        {"file_bytes", l.model->file_bytes},
                        {"state_bytes", c.n_layer * c.state_floats_per_layer() * 4},
                        {"tokenizer", l.tokenizer ? l.tokenizer->vocab_size() : 0},
                        {"tokenizer_source", l.tokenizer_source}};
  if (c.mamba1()) {
    out["d_inner"] = c.d_inner;
    out["dt_rank"] = c.dt_rank;
  }
  write_stdout(out.dump(2) + "\n");
  return 0;
}

}  // namespace

void add_info(Commands& commands) {
  auto m = std::make_shared<ModelArgs>();
  CLI::App* sub = commands.add("info", "a model's configuration, sizes, format and tokenizer source, as JSON", [m] { return run(*m); });
  add_model_option(sub, *m);
}

}  // namespace mamba::cli
