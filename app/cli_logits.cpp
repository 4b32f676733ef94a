// mamba-cli logits: the logits of every position of a prompt, as JSON (for checking against a reference).
#include <cmath>
#include <cstdio>
#include <sstream>

#include "app/cli_command.h"
#include "app/cli_common.h"
#include "engine/error.h"

namespace mamba::cli {

namespace {

constexpr int64_t kMaxLogits = int64_t{1} << 26;  // about 800 MB of JSON

struct LogitsArgs {
  ModelArgs model;
  DeviceArgs device;
  std::string ids;
  int64_t chunk_size = 0;
};

void print_row(std::ostream& os, const float* v, int64_t n) {
  char buf[32];
  os << '[';
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) throw Error("non-finite logit at index " + std::to_string(i));
    std::snprintf(buf, sizeof buf, "%.9g", double(v[i]));
    if (i) os << ',';
    os << buf;
  }
  os << ']';
}

int run(const LogitsArgs& a) {
  Loaded l = load_model(a.model);
  const std::vector<int32_t> ids = parse_ids(a.ids);
  auto backend = open_backend(a.device, l.model);
  const int64_t V = l.model->config.vocab_size, T = static_cast<int64_t>(ids.size());
  if (T * V > kMaxLogits)
    throw UsageError(std::to_string(T) + " positions x " + std::to_string(V) + " ids is more logits than this command prints (at most " +
                     std::to_string(kMaxLogits) + "); pass fewer --ids");
  std::vector<float> logits(static_cast<size_t>(T * V));
  ForwardOptions fo;
  fo.scan = parse_scan(a.device.scan);
  fo.chunk_size = a.chunk_size;
  fo.all_logits = true;
  backend->forward(ids, fo, logits.data());
  std::ostringstream os;
  os << "{\"vocab_size\": " << V << ", \"logits\": [";
  for (int64_t t = 0; t < T; ++t) {
    if (t) os << ", ";
    print_row(os, logits.data() + t * V, V);
  }
  os << "]}\n";
  write_stdout(os.str());
  return 0;
}

}  // namespace

void add_logits(Commands& commands) {
  auto a = std::make_shared<LogitsArgs>();
  CLI::App* sub = commands.add("logits", "the logits of every prompt position, as JSON", [a] { return run(*a); });
  add_model_option(sub, a->model);
  sub->add_option("--ids", a->ids, "prompt token ids")->type_name("1,2,3")->required();
  sub->add_option("--chunk-size", a->chunk_size, "chunk length of the chunked scan, 1..4096 (longer than the prompt: one chunk)")
      ->type_name("Q")
      ->check(CLI::Range(int64_t{1}, ForwardOptions::kMaxChunk));
  add_device_options(sub, a->device, true);
}

}  // namespace mamba::cli
