#include "app/cli_common.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "engine/error.h"

namespace mamba::cli {

Loaded load_model_arg(const Args& args) {
  Loaded l;
  l.dir = args.str("-m");
  if (l.dir.empty()) {
    l.dir = default_model_dir();
    if (!std::filesystem::exists(std::filesystem::path(l.dir) / "config.json"))
      throw Error("the embedded default model is missing (looked in " + l.dir + "); pass -m DIR with a Mamba-2 model folder");
  }
  LoadOptions lo;
  if (::isatty(STDERR_FILENO))
    lo.progress = [](uint64_t done, uint64_t total) {
      if (total) std::fprintf(stderr, "\rloading %3d%%", int(100 * done / total));
      if (done == total) std::fprintf(stderr, "\r            \r");
    };
  l.model = Model::load(l.dir, lo);
  const auto tok = std::filesystem::path(l.dir) / "tokenizer.json";
  if (std::filesystem::exists(tok)) l.tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_file(tok.string()));
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
    if (!l.tokenizer) throw Error(l.dir + ": no tokenizer.json in the model folder; pass --ids instead of -i");
    return l.tokenizer->encode(args.str("-i"));
  }
  if (required) throw UsageError("a prompt is required: -i TEXT or --ids 1,2,3");
  return {};
}

}  // namespace mamba::cli
