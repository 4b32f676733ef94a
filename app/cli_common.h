#pragma once
// What the model-running subcommands share: finding and loading the model, its tokenizer, the backend.
#include <memory>
#include <optional>
#include <string>

#include "app/cli_args.h"
#include "backends/backend_factory.h"
#include "engine/tokenizer.h"

namespace mamba::cli {

struct Loaded {
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Tokenizer> tokenizer;  // null when the checkpoint has none
  std::string dir;                             // the folder or file given with -m
  std::string format, tokenizer_source;        // engine/checkpoint.h
};

// -m PATH (any checkpoint engine/checkpoint.h opens), or the embedded default model (with a clear error
// when it is missing).
Loaded load_model_arg(const Args& args);
std::unique_ptr<Backend> make_backend_arg(const Args& args, std::shared_ptr<const Model> model);
// Prompt ids from --ids or -i TEXT (needs a tokenizer).
std::vector<int32_t> prompt_ids_arg(const Args& args, const Loaded& l, bool required);

int run_generate(int argc, char** argv);
int run_logits(int argc, char** argv);
int run_score(int argc, char** argv);
int run_bench(int argc, char** argv);
int run_info(int argc, char** argv);
int run_tokenize(int argc, char** argv);
int run_detokenize(int argc, char** argv);

}  // namespace mamba::cli
