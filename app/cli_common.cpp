#include "app/cli_common.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "engine/checkpoint.h"
#include "engine/error.h"

namespace mamba::cli {

Loaded load_model_arg(const Args& args) {
  Loaded l;
  l.dir = args.str("-m");
  if (l.dir.empty()) {
    l.dir = default_model_dir();
    if (!std::filesystem::exists(std::filesystem::path(l.dir) / "config.json"))
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

std::unique_ptr<Backend> make_backend_arg(const Args& args, std::shared_ptr<const Model> model) {
  BackendOptions bo;
  bo.threads = static_cast<int>(args.integer("--threads", 0));
  if (bo.threads < 0) throw UsageError("--threads must be >= 0");
  const std::string device = args.str("--device", "cpu");
  bo.dtype = args.str("--dtype", device == "cuda" ? "bf16" : "f32");
  return make_backend(device, std::move(model), bo);
}

std::vector<int32_t> prompt_ids_arg(const Args& args, const Loaded& l, bool required) {
  if (args.has("--ids") && args.has("-i")) throw UsageError("give either -i TEXT or --ids, not both");
  if (args.has("--ids")) return args.ids("--ids");
  if (args.has("-i")) {
    if (!l.tokenizer) throw Error(l.dir + ": no tokenizer (" + l.tokenizer_source + "); pass --ids instead of -i");
    return l.tokenizer->encode(args.str("-i"));
  }
  if (required) throw UsageError("a prompt is required: -i TEXT or --ids 1,2,3");
  return {};
}

}  // namespace mamba::cli
