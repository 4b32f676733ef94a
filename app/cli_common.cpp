#include "app/cli_common.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "engine/checkpoint.h"
#include "engine/error.h"

namespace mamba::cli {

Loaded load_model(const ModelArgs& m) {
  Loaded l;
  if (m.given()) {
    if (m.dir.empty()) throw UsageError("-m needs a model folder, got an empty string");
    l.dir = m.dir;
  } else {
    l.dir = default_model_dir();
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::path(l.dir) / "config.json", ec))
      throw Error("the embedded default model is missing (looked in " + l.dir + "); pass -m with a model folder, .gguf or model.bin");
  }
  LoadOptions lo;
  if (::isatty(STDERR_FILENO))
    lo.progress = [](uint64_t done, uint64_t total) {
      if (total) std::fprintf(stderr, "\rloading %3d%%", int(100 * done / total));
      if (done == total) std::fprintf(stderr, "\r            \r");
    };
  Checkpoint ck = load_checkpoint(l.dir, lo);
  l.model = ck.model;
  l.tokenizer = ck.tokenizer;
  l.format = ck.format;
  l.tokenizer_source = ck.tokenizer_source;
  return l;
}

BackendOptions backend_options(const DeviceArgs& d) {
  BackendOptions bo;
  bo.threads = d.threads;
  bo.dtype = d.dtype.empty() ? (d.device == "cuda" ? "bf16" : "f32") : d.dtype;
  return bo;
}

std::unique_ptr<Backend> open_backend(const DeviceArgs& d, std::shared_ptr<const Model> model) {
  return mamba::make_backend(d.device, std::move(model), backend_options(d));
}

std::vector<int32_t> prompt_ids(const PromptArgs& p, const Loaded& l, bool required) {
  const bool has_ids = p.ids_option->count() > 0, has_text = p.text_option->count() > 0;
  if (has_ids && has_text) throw UsageError("give either -i TEXT or --ids, not both");
  if (has_ids) return parse_ids(p.ids);
  if (has_text) {
    if (!l.tokenizer) throw Error(l.dir + ": no tokenizer.json in the model folder; pass --ids instead of -i");
    return l.tokenizer->encode(p.text);
  }
  if (required) throw UsageError("a prompt is required: -i TEXT or --ids 1,2,3");
  return {};
}

void write_stdout(const std::string& s) {
  if (std::fwrite(s.data(), 1, s.size(), stdout) != s.size() || std::fflush(stdout) != 0) throw Error("cannot write to standard output");
}

}  // namespace mamba::cli
