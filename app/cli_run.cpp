// generate, logits, score, info: the model-running subcommands.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/cli_common.h"
#include "engine/error.h"
#include "engine/json_lenient.h"
#include "engine/session.h"

namespace mamba::cli {

namespace {
const std::set<std::string> kDeviceFlags = {"-m", "--device", "--threads", "--scan", "--dtype"};

std::set<std::string> with(std::set<std::string> a, std::initializer_list<std::string> more) {
  a.insert(more.begin(), more.end());
  return a;
}

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
}  // namespace

int run_generate(int argc, char** argv) {
  Args args(argc, argv,
            with(kDeviceFlags, {"-i", "--ids", "-n", "-t", "--top-k", "--top-p", "--min-p", "--repeat-penalty", "--seed", "--chunk-size"}),
            {"--print-ids", "--no-stop"});
  Loaded l = load_model_arg(args);
  const std::vector<int32_t> prompt = prompt_ids_arg(args, l, true);
  if (prompt.empty()) throw UsageError("the prompt encodes to no tokens");
  GenerateOptions go;
  go.max_new_tokens = args.integer("-n", 128);
  go.sampling.temperature = static_cast<float>(args.number("-t", 0.8));
  go.sampling.top_k = static_cast<int>(args.integer("--top-k", 0));
  go.sampling.top_p = static_cast<float>(args.number("--top-p", 1.0));
  go.sampling.min_p = static_cast<float>(args.number("--min-p", 0.0));
  go.sampling.repeat_penalty = static_cast<float>(args.number("--repeat-penalty", 1.0));
  go.sampling.seed = static_cast<uint64_t>(args.integer("--seed", 1));
  go.scan = parse_scan(args.str("--scan", "chunked"));
  go.chunk_size = args.integer("--chunk-size", 0);
  go.stop_at_eos = !args.has("--no-stop");
  if (l.tokenizer) {
    go.sampling.n_valid = l.tokenizer->vocab_size();
    if (auto e = l.tokenizer->eos_id()) go.eos_id = *e;
  }
  try {
    go.sampling.validate();
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (go.max_new_tokens < 0) throw UsageError("-n must be >= 0");

  Session session(make_backend_arg(args, l.model));
  std::unique_ptr<StreamDecoder> dec;
  if (l.tokenizer) {
    dec = std::make_unique<StreamDecoder>(*l.tokenizer);
    std::string head;
    for (int32_t id : prompt) head += dec->push(id);
    std::fputs(head.c_str(), stdout);
  }
  GenerateResult r = session.generate(prompt, go, [&](const TokenEvent& ev) {
    if (dec) std::fputs(dec->push(ev.id).c_str(), stdout);
    else std::printf("%s%d", ev.index ? " " : "", ev.id);
    std::fflush(stdout);
  });
  if (dec) std::fputs(dec->flush().c_str(), stdout);
  std::fputs("\n", stdout);
  if (args.has("--print-ids")) std::printf("%s\n", nlohmann::json(r.ids).dump().c_str());
  std::fprintf(stderr, "[%lld prompt tokens in %.3f s, %lld new tokens at %.2f tok/s, stop: %s, %s]\n", (long long)r.prompt_tokens,
               r.prefill_seconds, (long long)r.ids.size(), r.ids.size() > 1 ? (r.ids.size() - 1) / std::max(1e-9, r.decode_seconds) : 0.0,
               r.stop_reason.c_str(), session.backend().name().c_str());
  return 0;
}

int run_logits(int argc, char** argv) {
  Args args(argc, argv, with(kDeviceFlags, {"--ids", "--chunk-size"}), {});
  if (!args.has("--ids")) throw UsageError("logits needs --ids 1,2,3");
  Loaded l = load_model_arg(args);
  const std::vector<int32_t> ids = args.ids("--ids");
  auto backend = make_backend_arg(args, l.model);
  const int64_t V = l.model->config.vocab_size, T = static_cast<int64_t>(ids.size());
  std::vector<float> logits(static_cast<size_t>(T * V));
  ForwardOptions fo;
  fo.scan = parse_scan(args.str("--scan", "chunked"));
  fo.chunk_size = args.integer("--chunk-size", 0);
  fo.all_logits = true;
  backend->forward(ids, fo, logits.data());
  std::ostringstream os;
  os << "{\"vocab_size\": " << V << ", \"logits\": [";
  for (int64_t t = 0; t < T; ++t) {
    if (t) os << ", ";
    print_row(os, logits.data() + t * V, V);
  }
  os << "]}\n";
  std::fputs(os.str().c_str(), stdout);
  return 0;
}

int run_score(int argc, char** argv) {
  Args args(argc, argv, with(kDeviceFlags, {"--text-file", "--window"}), {});
  if (!args.has("--text-file")) throw UsageError("score needs --text-file F");
  Loaded l = load_model_arg(args);
  if (!l.tokenizer) throw Error(l.dir + ": no tokenizer (" + l.tokenizer_source + "); score needs one");
  const std::string text = read_text_file(args.str("--text-file"));
  const std::vector<int32_t> ids = l.tokenizer->encode(text);
  if (ids.size() < 2) throw Error(args.str("--text-file") + ": text is too short to score (fewer than 2 tokens)");
  const int64_t window = args.integer("--window", 1024);
  if (window < 1) throw UsageError("--window must be >= 1");
  auto backend = make_backend_arg(args, l.model);
  const int64_t V = l.model->config.vocab_size, n = static_cast<int64_t>(ids.size());
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
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int run_info(int argc, char** argv) {
  Args args(argc, argv, {"-m"}, {});
  Loaded l = load_model_arg(args);
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
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace mamba::cli
