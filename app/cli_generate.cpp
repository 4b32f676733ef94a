// mamba-cli generate: continue a prompt, streaming the text (or ids) as they are sampled; --save-state and
// --load-state write and continue snapshots (docs/SNAPSHOTS.md).
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "app/cli_command.h"
#include "app/cli_common.h"
#include "engine/error.h"
#include "engine/session.h"
#include "engine/snapshot.h"

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
  std::string save_state, load_state;
  // given on the command line (they override a loaded snapshot's sampler)
  CLI::Option *temperature_opt = nullptr, *top_k_opt = nullptr, *top_p_opt = nullptr, *min_p_opt = nullptr, *penalty_opt = nullptr,
              *seed_opt = nullptr;
};

bool given(const CLI::Option* o) { return o && o->count() > 0; }

int run(const GenerateArgs& a) {
  Loaded l = load_model(a.model);
  const bool resume = !a.load_state.empty();
  // From a snapshot the prompt is optional: -i / --ids append to its text before continuing.
  const std::vector<int32_t> prompt = prompt_ids(a.prompt, l, !resume);
  if (!resume && prompt.empty()) throw UsageError("the prompt encodes to no tokens");
  std::optional<Snapshot> snap;
  if (resume) snap = load_snapshot(a.load_state);
  const bool saved_sampler = snap && snap->sampler;

  GenerateOptions go;
  go.max_new_tokens = a.n;
  // a snapshot's sampler settings and generator, unless flags say otherwise (--seed starts a new generator)
  if (saved_sampler) go.sampling = snap->sampler->params;
  if (!saved_sampler || given(a.temperature_opt)) go.sampling.temperature = static_cast<float>(a.temperature);
  if (!saved_sampler || given(a.top_k_opt)) go.sampling.top_k = a.top_k;
  if (!saved_sampler || given(a.top_p_opt)) go.sampling.top_p = static_cast<float>(a.top_p);
  if (!saved_sampler || given(a.min_p_opt)) go.sampling.min_p = static_cast<float>(a.min_p);
  if (!saved_sampler || given(a.penalty_opt)) go.sampling.repeat_penalty = static_cast<float>(a.repeat_penalty);
  if (!saved_sampler || given(a.seed_opt)) go.sampling.seed = a.seed;
  go.reseed = !saved_sampler || given(a.seed_opt);
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
  if (snap) session.restore_snapshot(*snap, a.load_state);
  std::unique_ptr<StreamDecoder> dec;
  if (l.tokenizer) {
    dec = std::make_unique<StreamDecoder>(*l.tokenizer);
    std::string head;
    for (int32_t id : prompt) head += dec->push(id);
    std::fputs(head.c_str(), stdout);
  }
  GenerateResult r;
  if (go.max_new_tokens == 0) {
    // nothing to sample: the prompt is queued (its last token pending), so a saved state continues exactly
    session.queue(prompt, go.scan, go.chunk_size);
    r.prompt_tokens = static_cast<int64_t>(prompt.size());
    r.stop_reason = "length";
  } else {
    r = session.generate(prompt, go, [&](const TokenEvent& ev) {
      if (dec) std::fputs(dec->push(ev.id).c_str(), stdout);
      else std::printf("%s%d", ev.index ? " " : "", ev.id);
      std::fflush(stdout);
    });
  }
  if (dec) std::fputs(dec->flush().c_str(), stdout);
  std::fputs("\n", stdout);
  if (!a.save_state.empty()) save_snapshot(session.snapshot(), a.save_state);
  if (a.print_ids) std::printf("%s\n", nlohmann::json(r.ids).dump().c_str());
  std::fprintf(stderr, "[%lld prompt tokens in %.3f s, %lld new tokens at %.2f tok/s, stop: %s, %s%s]\n", (long long)r.prompt_tokens,
               r.prefill_seconds, (long long)r.ids.size(), r.ids.size() > 1 ? (r.ids.size() - 1) / std::max(1e-9, r.decode_seconds) : 0.0,
               r.stop_reason.c_str(), session.backend().name().c_str(),
               a.save_state.empty() ? "" : (", state saved to " + a.save_state).c_str());
  return 0;
}

}  // namespace

void add_generate(Commands& commands) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* sub =
      commands.add("generate", "continue a prompt (or a saved state), streaming the text as it is sampled", [a] { return run(*a); });
  add_model_option(sub, a->model);
  add_prompt_options(sub, a->prompt);
  sub->add_option("-n", a->n, "new tokens at most")->type_name("N")->capture_default_str()->check(NonNegative);
  a->temperature_opt =
      sub->add_option("-t,--temperature", a->temperature, "sampling temperature (0: greedy)")->type_name("TEMP")->capture_default_str();
  a->top_k_opt = sub->add_option("--top-k", a->top_k, "keep the K most likely ids (0: all)")->type_name("K")->check(NonNegative);
  a->top_p_opt =
      sub->add_option("--top-p", a->top_p, "nucleus: keep the most likely ids up to this mass")->type_name("P")->capture_default_str();
  a->min_p_opt =
      sub->add_option("--min-p", a->min_p, "drop ids below P times the best one's probability")->type_name("P")->capture_default_str();
  a->penalty_opt = sub->add_option("--repeat-penalty", a->repeat_penalty, "divide the logits of ids already seen")
                       ->type_name("R")
                       ->capture_default_str();
  a->seed_opt = sub->add_option("--seed", a->seed, "sampler seed")->type_name("S")->capture_default_str()->check(NonNegative);
  sub->add_option("--save-state", a->save_state, "save the state after the last token (a snapshot: docs/SNAPSHOTS.md)")->type_name("FILE");
  sub->add_option("--load-state", a->load_state,
                  "continue from a snapshot, with its sampler settings and generator unless flags override them "
                  "(--seed: a new generator); -i / --ids append before continuing")
      ->type_name("FILE");
  sub->add_option("--chunk-size", a->chunk_size, "chunk length of the chunked scan, 1..4096 (longer than the prompt: one chunk)")
      ->type_name("Q")
      ->check(CLI::Range(int64_t{1}, ForwardOptions::kMaxChunk));
  sub->add_flag("--print-ids", a->print_ids, "print the generated ids as a JSON array after the text");
  sub->add_flag("--no-stop", a->no_stop, "keep going past the end-of-text id");
  add_device_options(sub, a->device, true);
}

}  // namespace mamba::cli
