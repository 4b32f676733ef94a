// mamba-cli generate: continue a prompt, streaming the text (or ids) as they are sampled.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/cli_command.h"
#include "app/cli_common.h"
#include "engine/error.h"
#include "engine/session.h"

namespace mamba::cli {

namespace {

struct GenerateArgs {
  ModelArgs model;
  DeviceArgs device;
  PromptArgs prompt;
  int64_t n = 128;
  double temperature = 0.8, top_p = 1.0, min_p = 0.0, repeat_penalty = 1.0;
  int top_k = 0;
  uint64_t seed = 1;
  int64_t chunk_size = 0;
  bool print_ids = false, no_stop = false;
};

int run(const GenerateArgs& a) {
  Loaded l = load_model(a.model);
  const std::vector<int32_t> prompt = prompt_ids(a.prompt, l, true);
  if (prompt.empty()) throw UsageError("the prompt encodes to no tokens");
  GenerateOptions go;
  go.max_new_tokens = a.n;
  go.sampling.temperature = static_cast<float>(a.temperature);
  go.sampling.top_k = a.top_k;
  go.sampling.top_p = static_cast<float>(a.top_p);
  go.sampling.min_p = static_cast<float>(a.min_p);
  go.sampling.repeat_penalty = static_cast<float>(a.repeat_penalty);
  go.sampling.seed = a.seed;
  go.scan = parse_scan(a.device.scan);
  go.chunk_size = a.chunk_size;
  go.stop_at_eos = !a.no_stop;
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

  Session session(open_backend(a.device, l.model));
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
  if (a.print_ids) std::printf("%s\n", nlohmann::json(r.ids).dump().c_str());
  std::fprintf(stderr, "[%lld prompt tokens in %.3f s, %lld new tokens at %.2f tok/s, stop: %s, %s]\n", (long long)r.prompt_tokens,
               r.prefill_seconds, (long long)r.ids.size(), r.ids.size() > 1 ? (r.ids.size() - 1) / std::max(1e-9, r.decode_seconds) : 0.0,
               r.stop_reason.c_str(), session.backend().name().c_str());
  return 0;
}

}  // namespace

void add_generate(Commands& commands) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* sub = commands.add("generate", "continue a prompt, streaming the text as it is sampled", [a] { return run(*a); });
  add_model_option(sub, a->model);
  add_prompt_options(sub, a->prompt);
  sub->add_option("-n", a->n, "new tokens at most")->type_name("N")->capture_default_str()->check(NonNegative);
  sub->add_option("-t,--temperature", a->temperature, "sampling temperature (0: greedy)")->type_name("TEMP")->capture_default_str();
  sub->add_option("--top-k", a->top_k, "keep the K most likely ids (0: all)")->type_name("K")->check(NonNegative);
  sub->add_option("--top-p", a->top_p, "nucleus: keep the most likely ids up to this mass")->type_name("P")->capture_default_str();
  sub->add_option("--min-p", a->min_p, "drop ids below P times the best one's probability")->type_name("P")->capture_default_str();
  sub->add_option("--repeat-penalty", a->repeat_penalty, "divide the logits of ids already seen")->type_name("R")->capture_default_str();
  sub->add_option("--seed", a->seed, "sampler seed")->type_name("S")->capture_default_str()->check(NonNegative);
  sub->add_option("--chunk-size", a->chunk_size, "chunk length of the chunked scan, 1..4096 (longer than the prompt: one chunk)")
      ->type_name("Q")
      ->check(CLI::Range(int64_t{1}, ForwardOptions::kMaxChunk));
  sub->add_flag("--print-ids", a->print_ids, "print the generated ids as a JSON array after the text");
  sub->add_flag("--no-stop", a->no_stop, "keep going past the end-of-text id");
  add_device_options(sub, a->device, true);
}

}  // namespace mamba::cli
