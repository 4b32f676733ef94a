#pragma once
// A conversation with a model: backend (with its live state) + token history + sampling.
// generate() streams tokens through a callback and stops at N tokens, EOS, or the cancel flag.
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/sampler.h"

namespace mamba {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplerParams sampling;
  // true: a fresh generator seeded with sampling.seed; false: the session's generator goes on where the
  // last run (or a restored snapshot) left it, with these settings.
  bool reseed = true;
  ScanMode scan = ScanMode::Chunked;  // how the prompt is consumed
  int64_t chunk_size = 0;             // 0: the model's
  int32_t eos_id = -1;                // stop when sampled (-1: the config's eos_token_id, if any)
  bool stop_at_eos = true;
  bool probabilities = false;  // report each token's model probability
  int top_alternatives = 0;    // and this many alternatives (0..DecodeRequest::kMaxTopN)
  // progress(done, total) in tokens while the prompt is consumed (ForwardOptions::progress).
  std::function<void(int64_t, int64_t)> prefill_progress;
};

struct TokenEvent {
  int64_t index = 0;  // 0-based among the new tokens
  int32_t id = 0;
  SampleInfo info;  // prob and alternatives, as GenerateOptions asked
};

struct GenerateResult {
  std::vector<int32_t> ids;  // the new tokens (EOS included when it stopped there)
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  std::string stop_reason;  // "length" | "eos" | "cancelled"
};

class Session {
 public:
  explicit Session(std::unique_ptr<Backend> backend);

  Backend& backend() { return *m_backend; }
  const Model& model() const { return m_backend->model(); }
  const std::vector<int32_t>& tokens() const { return m_tokens; }  // every token of the sequence so far
  void reset();

  // Feeds `ids` (prefill) after any pending token; the backend keeps the last logits for the next sample.
  void append(std::span<const int32_t> ids, ScanMode scan = ScanMode::Chunked, int64_t chunk_size = 0);
  // Probes of every token fed from now on (engine/probes.h), or null for none. Not owned.
  void set_probes(ProbeSink* probes) { m_probes = probes; }
  // The generator the next generate() with reseed = false continues (snapshots save and restore it).
  // Null before the first generate() or set_sampler().
  const Sampler* sampler() const { return m_sampler ? &*m_sampler : nullptr; }
  void set_sampler(const Sampler& s) { m_sampler = s; }
  // Appends `prompt` (may be empty to continue) and samples up to max_new_tokens. `cancel` is polled
  // between the prompt's layers and segments and between sampled tokens; a prompt cancelled before it
  // was consumed leaves the session as it was (stop_reason "cancelled", no ids).
  GenerateResult generate(std::span<const int32_t> prompt, const GenerateOptions& opt,
                          const std::function<void(const TokenEvent&)>& on_token = {}, const std::atomic<bool>* cancel = nullptr);

  // Full state for snapshots: the backend state plus tokens not yet fed through the model.
  State state() const;
  const std::vector<int32_t>& pending() const { return m_pending; }
  void restore(const State& s, std::vector<int32_t> tokens, std::vector<int32_t> pending);

 private:
  void flush_pending(std::span<const int32_t> more, ScanMode scan, int64_t chunk_size, const std::atomic<bool>* cancel = nullptr,
                     const std::function<void(int64_t, int64_t)>* progress = nullptr);
  std::unique_ptr<Backend> m_backend;
  std::vector<int32_t> m_tokens;   // history (fed + pending)
  std::vector<int32_t> m_pending;  // sampled but not yet run through the model (saves a step at the end)
  bool m_have_logits = false;      // the backend holds the logits after the last fed token
  std::optional<Sampler> m_sampler;
  ProbeSink* m_probes = nullptr;
};

}  // namespace mamba
