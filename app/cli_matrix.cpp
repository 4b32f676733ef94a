// mamba-cli matrix: one layer and head's SSD matrix over a prompt (the state-space / attention duality,
// engine/ssd_matrix.h), float64, with the duality's error against the engine's own scan output.
#include <cstdio>
#include <sstream>

#include "app/cli_command.h"
#include "app/cli_common.h"
#include "engine/error.h"
#include "engine/ssd_matrix.h"

namespace mamba::cli {

namespace {

struct MatrixArgs {
  ModelArgs model;
  DeviceArgs device;
  PromptArgs prompt;
  int64_t layer = -1, head = -1;
};

int run(const MatrixArgs& a) {
  Loaded l = load_model(a.model);
  const Config& c = l.model->config;
  if (a.layer >= c.n_layer)
    throw UsageError("--layer " + std::to_string(a.layer) + ": the model has layers 0.." + std::to_string(c.n_layer - 1));
  if (a.head >= c.n_heads)
    throw UsageError("--head " + std::to_string(a.head) + ": the model has heads 0.." + std::to_string(c.n_heads - 1));
  const std::vector<int32_t> ids = prompt_ids(a.prompt, l, true);
  if (ids.empty()) throw UsageError("the prompt encodes to no tokens");
  // the layer's values from the chosen device's forward (on CUDA its recurrent scan, in the weights' dtype)
  auto backend = open_backend(a.device, l.model);
  const LayerCapture cap = capture_layer(*backend, ids, a.layer);
  const SsdMatrix m = ssd_matrix(cap, c, l.model->weights.layers[static_cast<size_t>(a.layer)], a.head);
  std::ostringstream os;
  char buf[40];
  os << "{\"layer\": " << a.layer << ", \"head\": " << a.head << ", \"group\": " << m.group << ", \"tokens\": [";
  for (size_t i = 0; i < ids.size(); ++i) os << (i ? "," : "") << ids[i];
  std::snprintf(buf, sizeof buf, "%.17g", duality_rel_err(m, cap, c));
  os << "],\n\"duality_rel_err\": " << buf << ",\n\"M\": [";
  for (int64_t t = 0; t < m.T; ++t) {
    os << (t ? ",\n [" : "\n [");
    for (int64_t s = 0; s < m.T; ++s) {
      std::snprintf(buf, sizeof buf, "%s%.17g", s ? "," : "", m.at(t, s));
      os << buf;
    }
    os << ']';
  }
  os << "]}\n";
  write_stdout(os.str());
  return 0;
}

}  // namespace

void add_matrix(Commands& commands) {
  auto a = std::make_shared<MatrixArgs>();
  CLI::App* sub = commands.add("matrix",
                               "one layer and head's SSD matrix M over a prompt (y = M x + D x), float64 from the values the chosen "
                               "device used, as JSON with the duality's relative error against that device's scan output",
                               [a] { return run(*a); });
  add_model_option(sub, a->model);
  add_prompt_options(sub, a->prompt);
  sub->add_option("--layer", a->layer, "the layer")->required()->check(NonNegative);
  sub->add_option("--head", a->head, "the head (its group's B and C)")->required()->check(NonNegative);
  add_device_options(sub, a->device, false);
}

}  // namespace mamba::cli
