// mamba-cli score: negative log-likelihood, nats per byte and perplexity of a text file.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/cli_command.h"
#include "app/cli_common.h"
#include "engine/error.h"
#include "engine/json_lenient.h"

namespace mamba::cli {

namespace {

constexpr int64_t kMaxLogits = int64_t{1} << 28;  // 1 GiB of float32

struct ScoreArgs {
  ModelArgs model;
  DeviceArgs device;
  std::string text_file;
  int64_t window = 1024;
};

int run(const ScoreArgs& a) {
  Loaded l = load_model(a.model);
  if (!l.tokenizer) throw Error(l.dir + ": no tokenizer (" + l.tokenizer_source + "); score needs one");
  const std::string text = read_text_file(a.text_file);
  const std::vector<int32_t> ids = l.tokenizer->encode(text);
  if (ids.size() < 2) throw Error(a.text_file + ": text is too short to score (fewer than 2 tokens)");
  auto backend = open_backend(a.device, l.model);
  const int64_t V = l.model->config.vocab_size, n = static_cast<int64_t>(ids.size());
  // A window longer than the text is the text; its logits are held at once, so they are bounded.
  const int64_t window = std::min(a.window, n - 1);
  if (window * V > kMaxLogits)
    throw UsageError("--window " + std::to_string(window) + " holds " + std::to_string(window * V) + " logits at once (at most " +
                     std::to_string(kMaxLogits) + " for this vocabulary); use a smaller --window");
  std::vector<float> logits(static_cast<size_t>(window * V));
  ForwardOptions fo;
  fo.all_logits = true;
  double nll = 0.0;
  // Position t predicts ids[t+1]; the state carries across windows, so this equals one long forward pass.
  for (int64_t start = 0; start < n - 1; start += window) {
    const int64_t len = std::min(window, n - 1 - start);
    backend->forward(std::span<const int32_t>(ids.data() + start, static_cast<size_t>(len)), fo, logits.data());
    for (int64_t i = 0; i < len; ++i) {
      const float* row = logits.data() + i * V;
      float mx = row[0];
      for (int64_t v = 1; v < V; ++v) mx = std::max(mx, row[v]);
      double z = 0.0;
      for (int64_t v = 0; v < V; ++v) z += std::exp(double(row[v]) - mx);
      nll += std::log(z) + mx - row[ids[static_cast<size_t>(start + i + 1)]];
    }
  }
  // Bytes predicted: everything after the first token, which nothing predicts.
  const uint64_t bytes = text.size() - l.tokenizer->decode(std::span<const int32_t>(ids.data(), 1)).size();
  nlohmann::json out = {{"tokens", n},
                        {"predicted_tokens", n - 1},
                        {"bytes", bytes},
                        {"nll", nll},
                        {"nats_per_byte", nll / double(bytes)},
                        {"perplexity", std::exp(nll / double(n - 1))}};
  write_stdout(out.dump() + "\n");
  return 0;
}

}  // namespace

void add_score(Commands& commands) {
  auto a = std::make_shared<ScoreArgs>();
  CLI::App* sub = commands.add("score", "negative log-likelihood and perplexity of a text file", [a] { return run(*a); });
  add_model_option(sub, a->model);
  sub->add_option("--text-file", a->text_file, "the text to score")->type_name("F")->required();
  sub->add_option("--window", a->window, "tokens per forward pass (the state carries across)")
      ->type_name("N")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  add_device_options(sub, a->device, false);
}

}  // namespace mamba::cli
