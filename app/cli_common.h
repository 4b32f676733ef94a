#pragma once
// What the model-running subcommands share: finding and loading the model, its tokenizer, the backend.
#include <memory>
#include <string>
#include <vector>

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
Loaded load_model(const ModelArgs& m);
std::unique_ptr<Backend> open_backend(const DeviceArgs& d, std::shared_ptr<const Model> model);
BackendOptions backend_options(const DeviceArgs& d);
// Prompt ids from --ids or -i TEXT (needs a tokenizer).
std::vector<int32_t> prompt_ids(const PromptArgs& p, const Loaded& l, bool required);
// The whole string to standard output (fwrite, not puts: decoded text may contain NUL bytes).
void write_stdout(const std::string& s);

}  // namespace mamba::cli
