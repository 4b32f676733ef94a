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
#include "engine/snapshot.h"

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
  // Sets state and history as they are (no checks against the model beyond the state's shapes); the
  // checkpoints and run records start again here. Prefer restore_snapshot().
  void restore(const State& s, std::vector<int32_t> tokens, std::vector<int32_t> pending);

  // Feeds all of `ids` but the last after any pending token; the last one stays pending, so the
  // sequence can be snapshotted (a snapshot never holds logits) and the next generate() feeds it.
  void queue(std::span<const int32_t> ids, ScanMode scan = ScanMode::Chunked, int64_t chunk_size = 0);

  // --- snapshots (engine/snapshot.h) ---
  // The sequence now: state, history, pending token, sampler, dt edits, and who made it. Throws when a
  // prompt was fed and nothing sampled from it yet (its logits are not part of a snapshot: queue() it).
  Snapshot snapshot() const;
  // Continues from `s`: checks that it belongs to this model (SnapshotError otherwise) and that the
  // backend can apply its dt edits, then sets everything. A refusal leaves the session as it was.
  void restore_snapshot(const Snapshot& s, const std::string& origin = "snapshot");
  // dt edits (engine/dt_edit.h) for the tokens from now on; the backend may refuse (then nothing changes).
  void set_dt_edits(std::vector<DtEdit> edits) { m_backend->set_dt_edits(std::move(edits)); }
  std::vector<DtEdit> dt_edits() const { return m_backend->dt_edits(); }

  // --- checkpoints: snapshots at earlier tokens ---
  // Keeps the state after each prompt and every `every` generated tokens (0: off, the default), so that
  // snapshot_at() replays at most `every` - 1 tokens. When they take more than `budget_bytes`, every
  // other one is dropped (the spacing doubles). Turning them on keeps the current state as the first.
  static constexpr uint64_t kDefaultCheckpointBudget = uint64_t(512) << 20;
  void set_checkpoints(int64_t every, uint64_t budget_bytes = kDefaultCheckpointBudget);
  struct CheckpointStats {
    int64_t every = 0;       // as set (0: off)
    int64_t count = 0;       // states held
    uint64_t bytes = 0;      // their memory
    int64_t first = 0;       // the earliest position snapshot_at() can rebuild
    int64_t max_replay = 0;  // the most tokens a snapshot_at() replays now
  };
  CheckpointStats checkpoint_stats() const;
  // The sequence through token `position` (an index into tokens()), that token pending, with the
  // sampler as it was before the id after it was drawn: replayed from the nearest checkpoint the way the
  // tokens were first fed (a prompt by the same scan, generated tokens one step each), so at generated
  // tokens it equals the snapshot() taken then, bit for bit. The live session is put back afterwards.
  Snapshot snapshot_at(int64_t position);

 private:
  struct Feed {  // a multi-token forward, for exact replay
    int64_t start = 0, count = 0;
    ScanMode scan = ScanMode::Chunked;
    int64_t chunk = 0;
  };
  struct Run {  // one generate(): where its ids start and the generator before the first one
    int64_t first = 0, count = 0;
    SamplerState start;
  };
  struct Checkpoint {
    int64_t fed = 0;
    State state;  // no layers: the zero state
  };
  void flush_pending(std::span<const int32_t> more, ScanMode scan, int64_t chunk_size, const std::atomic<bool>* cancel = nullptr,
                     const std::function<void(int64_t, int64_t)>* progress = nullptr);
  void forget_history(int64_t origin, const State* origin_state);
  void checkpoint();
  std::optional<SamplerState> sampler_before(int64_t index) const;
  Snapshot make_snapshot(State state, std::vector<int32_t> tokens, std::vector<int32_t> pending, std::optional<SamplerState> sampler) const;

  std::unique_ptr<Backend> m_backend;
  std::vector<int32_t> m_tokens;   // history (fed + pending)
  std::vector<int32_t> m_pending;  // sampled but not yet run through the model (saves a step at the end)
  bool m_have_logits = false;      // the backend holds the logits after the last fed token
  std::optional<Sampler> m_sampler;
  ProbeSink* m_probes = nullptr;
  // what snapshot_at() needs, from m_origin on
  int64_t m_origin = 0;  // fed tokens when the history began (reset: 0, restore: the snapshot's)
  std::vector<Feed> m_feeds;
  std::vector<Run> m_runs;
  int64_t m_every = 0;
  uint64_t m_budget = kDefaultCheckpointBudget;
  std::vector<Checkpoint> m_checkpoints;  // by fed count, the first at m_origin or later
};

}  // namespace mamba
