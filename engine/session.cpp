#include "engine/session.h"

#include <algorithm>
#include <ctime>
#include <filesystem>

#include "engine/clock.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/version.h"

namespace mamba {

Session::Session(std::unique_ptr<Backend> backend) : m_backend(std::move(backend)) {
  if (!m_backend) throw Error("session: no backend");
}

void Session::reset() {
  m_backend->reset_state();
  m_tokens.clear();
  m_pending.clear();
  m_have_logits = false;
  forget_history(0, nullptr);
}

void Session::forget_history(int64_t origin, const State* origin_state) {
  m_origin = origin;
  m_feeds.clear();
  m_runs.clear();
  m_checkpoints.clear();
  if (m_every > 0) m_checkpoints.push_back({origin, origin_state ? *origin_state : State{}});
}

void Session::flush_pending(std::span<const int32_t> more, ScanMode scan, int64_t chunk_size, const std::atomic<bool>* cancel,
                            const std::function<void(int64_t, int64_t)>* progress) {
  std::vector<int32_t> feed = m_pending;
  feed.insert(feed.end(), more.begin(), more.end());
  if (feed.empty()) return;
  const int64_t start = m_backend->n_tokens();
  if (feed.size() == 1) {
    m_backend->step(feed[0], nullptr, m_probes);
  } else {
    ForwardOptions fo;
    fo.scan = scan;
    fo.chunk_size = chunk_size;
    fo.probes = m_probes;
    fo.cancel = cancel;
    if (progress) fo.progress = *progress;
    m_backend->forward(feed, fo, nullptr);
    m_feeds.push_back({start, static_cast<int64_t>(feed.size()), scan, chunk_size});
  }
  m_pending.clear();
  m_tokens.insert(m_tokens.end(), more.begin(), more.end());
  m_have_logits = true;
  if (feed.size() > 1) checkpoint();
}

void Session::append(std::span<const int32_t> ids, ScanMode scan, int64_t chunk_size) { flush_pending(ids, scan, chunk_size); }

void Session::queue(std::span<const int32_t> ids, ScanMode scan, int64_t chunk_size) {
  if (ids.empty()) return;
  flush_pending(ids.first(ids.size() - 1), scan, chunk_size);
  m_pending.push_back(ids.back());
  m_tokens.push_back(ids.back());
  m_have_logits = false;
}

GenerateResult Session::generate(std::span<const int32_t> prompt, const GenerateOptions& opt,
                                 const std::function<void(const TokenEvent&)>& on_token, const std::atomic<bool>* cancel) {
  GenerateResult r;
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  opt.sampling.validate();
  if (opt.max_new_tokens < 0) throw Error("max new tokens must be >= 0");
  DecodeRequest req;
  req.prob = opt.probabilities || opt.top_alternatives > 0;
  req.top_n = opt.top_alternatives;
  req.probes = m_probes;
  check_decode_request(req);

  const double t0 = now_seconds();
  // One pending token and no prompt: decode() feeds it. Otherwise the prompt (after any pending token)
  // is prefilled and the first id comes from its logits.
  if (!prompt.empty() || m_pending.size() > 1) {
    try {
      flush_pending(prompt, opt.scan, opt.chunk_size, cancel, &opt.prefill_progress);
    } catch (const Cancelled&) {
      r.stop_reason = "cancelled";
      r.prefill_seconds = now_seconds() - t0;
      return r;
    }
  }
  if (m_pending.size() == 1) req.token = m_pending[0];
  else if (!m_have_logits) throw Error("nothing to continue from: the prompt is empty");
  const double t1 = now_seconds();
  r.prefill_seconds = t1 - t0;

  if (opt.reseed || !m_sampler) m_sampler.emplace(opt.sampling);
  else m_sampler->set_params(opt.sampling);
  const int64_t eos = opt.eos_id >= 0 ? opt.eos_id : model().config.eos_token_id;
  std::vector<int32_t> stop;
  if (opt.stop_at_eos && eos >= 0) stop.push_back(static_cast<int32_t>(eos));
  req.stop = stop;

  r.stop_reason = "length";
  if (cancel && cancel->load() && opt.max_new_tokens > 0) {
    r.stop_reason = "cancelled";
    r.decode_seconds = now_seconds() - t1;
    return r;
  }
  m_runs.push_back({static_cast<int64_t>(m_tokens.size()), 0, SamplerState::of(*m_sampler)});
  const auto on_id = [&](const DecodedToken& d) {
    TokenEvent ev;
    ev.index = static_cast<int64_t>(r.ids.size());
    ev.id = d.id;
    ev.info = d.info;
    // The token this run started from (if pending) is fed by now, as is every id but the newest.
    m_pending.assign(1, d.id);
    m_tokens.push_back(d.id);
    r.ids.push_back(d.id);
    ++m_runs.back().count;
    m_have_logits = false;
    if (on_token) on_token(ev);
    return !(cancel && cancel->load());
  };
  // With checkpoints on, the run goes in pieces of `every` ids with the state kept after each: a
  // decode continues exactly where the last one stopped, so the ids are those of one long call.
  int64_t left = opt.max_new_tokens;
  while (left > 0) {
    req.steps = m_every > 0 ? std::min(left, m_every) : left;
    // The repetition penalty reads the history before this piece; decode() adds the piece's own ids.
    const std::vector<int32_t> history = m_tokens;
    const int64_t got = m_backend->decode(req, *m_sampler, history, on_id);
    left -= got;
    const bool stopped = !r.ids.empty() && !stop.empty() && r.ids.back() == stop[0];
    if (got < req.steps || stopped || (cancel && cancel->load())) break;
    if (left > 0) {
      checkpoint();
      req.token = m_pending[0];
    }
  }
  if (!r.ids.empty() && !stop.empty() && r.ids.back() == stop[0]) r.stop_reason = "eos";
  else if (cancel && cancel->load() && static_cast<int64_t>(r.ids.size()) < opt.max_new_tokens) r.stop_reason = "cancelled";
  if (m_every > 0 && !r.ids.empty()) checkpoint();
  r.decode_seconds = now_seconds() - t1;
  return r;
}

State Session::state() const { return m_backend->get_state(); }

void Session::restore(const State& s, std::vector<int32_t> tokens, std::vector<int32_t> pending) {
  if (pending.empty() && !tokens.empty())
    // the logits after the last fed token are not part of the state: the last token must be fed again
    throw Error("restore: the last token must be pending so its logits can be recomputed");
  m_backend->set_state(s);
  m_tokens = std::move(tokens);
  m_pending = std::move(pending);
  m_have_logits = false;
  forget_history(s.n_tokens, &s);
}

// ---------------------------------------------------------------------------------------------------
// snapshots

Snapshot Session::make_snapshot(State state, std::vector<int32_t> tokens, std::vector<int32_t> pending,
                                std::optional<SamplerState> sampler) const {
  Snapshot s;
  const Model& m = model();
  s.model_id = m.identity();
  s.model_name = m.source.empty() ? std::string() : std::filesystem::path(m.source).filename().string();
  s.device = m_backend->name();
  s.weights_dtype = m_backend->weights_dtype();
  s.engine_version = engine_version();
  s.created_unix = static_cast<int64_t>(std::time(nullptr));
  s.shape = SnapshotShape::of(m.config);
  s.state = std::move(state);
  s.tokens = std::move(tokens);
  s.pending = std::move(pending);
  s.sampler = std::move(sampler);
  s.dt_edits = m_backend->dt_edits();
  return s;
}

Snapshot Session::snapshot() const {
  if (m_pending.empty() && !m_tokens.empty())
    throw Error(
        "snapshot: the sequence ends with a prompt that nothing was sampled from yet, and a snapshot does not hold logits; "
        "generate at least one token first");
  return make_snapshot(m_backend->get_state(), m_tokens, m_pending, m_sampler ? std::optional(SamplerState::of(*m_sampler)) : std::nullopt);
}

void Session::restore_snapshot(const Snapshot& s, const std::string& origin) {
  check_snapshot_fits(s, model(), origin);
  if (s.pending.empty() && !s.tokens.empty())
    throw SnapshotError(SnapshotProblem::SizeMismatch, origin + ": it has tokens but none pending, so it cannot be continued");
  if (s.sampler) s.sampler->params.validate();
  const std::vector<DtEdit> old_edits = m_backend->dt_edits();
  m_backend->set_dt_edits(s.dt_edits);  // the one step a backend may refuse: first, while nothing has changed
  try {
    restore(s.state, s.tokens, s.pending);
  } catch (...) {
    m_backend->set_dt_edits(old_edits);
    throw;
  }
  if (s.sampler) m_sampler = s.sampler->make();
  else m_sampler.reset();
}

// ---------------------------------------------------------------------------------------------------
// checkpoints

void Session::set_checkpoints(int64_t every, uint64_t budget_bytes) {
  if (every < 0) throw Error("checkpoint interval must be >= 0");
  m_every = every;
  m_budget = budget_bytes;
  m_checkpoints.clear();
  if (every == 0) return;
  // the earliest state still to be had is the current one
  const int64_t fed = m_backend->n_tokens();
  m_origin = fed;
  if (fed == 0) m_checkpoints.push_back({0, State{}});
  else m_checkpoints.push_back({fed, m_backend->get_state()});
  std::erase_if(m_feeds, [&](const Feed& f) { return f.start < fed; });
}

void Session::checkpoint() {
  if (m_every <= 0) return;
  const int64_t fed = m_backend->n_tokens();
  if (!m_checkpoints.empty() && m_checkpoints.back().fed >= fed) return;
  m_checkpoints.push_back({fed, m_backend->get_state()});
  uint64_t bytes = 0;
  for (const Checkpoint& c : m_checkpoints) bytes += c.state.bytes();
  if (bytes <= m_budget || m_checkpoints.size() < 3) return;
  // over budget: keep the first (the history's start) and every other one after it, newest included
  std::vector<Checkpoint> kept;
  kept.push_back(std::move(m_checkpoints.front()));
  const size_t n = m_checkpoints.size();
  for (size_t i = 1; i < n; ++i)
    if ((n - 1 - i) % 2 == 0) kept.push_back(std::move(m_checkpoints[i]));
  m_checkpoints = std::move(kept);
}

Session::CheckpointStats Session::checkpoint_stats() const {
  CheckpointStats st;
  st.every = m_every;
  st.count = static_cast<int64_t>(m_checkpoints.size());
  for (const Checkpoint& c : m_checkpoints) st.bytes += c.state.bytes();
  st.first = m_checkpoints.empty() ? static_cast<int64_t>(m_tokens.size()) : m_checkpoints.front().fed;
  for (size_t i = 0; i < m_checkpoints.size(); ++i) {
    const int64_t next = i + 1 < m_checkpoints.size() ? m_checkpoints[i + 1].fed : static_cast<int64_t>(m_tokens.size());
    st.max_replay = std::max(st.max_replay, next - 1 - m_checkpoints[i].fed);
  }
  st.max_replay = std::max<int64_t>(0, st.max_replay);
  return st;
}

std::optional<SamplerState> Session::sampler_before(int64_t index) const {
  // the run whose ids reach `index` (or the last one before it): its generator advanced one draw per id
  // sampled before `index` (none when greedy), as Sampler::sample draws
  const Run* run = nullptr;
  for (const Run& r : m_runs)
    if (r.first <= index) run = &r;
  if (!run) {
    if (!m_runs.empty()) return m_runs.front().start;  // a prompt before the first run: that run's generator
    return m_sampler ? std::optional(SamplerState::of(*m_sampler)) : std::nullopt;
  }
  Sampler s = run->start.make();
  const int64_t draws = run->start.params.temperature > 0.f ? std::min(index - run->first, run->count) : 0;
  for (int64_t i = 0; i < draws; ++i) s.next_uniform();
  return SamplerState::of(s);
}

Snapshot Session::snapshot_at(int64_t position) {
  const int64_t n = static_cast<int64_t>(m_tokens.size());
  if (position < 0 || position >= n)
    throw Error("snapshot at token " + std::to_string(position) + ": the sequence has " + std::to_string(n) + " tokens");
  if (position == n - 1 && !m_pending.empty()) return snapshot();
  if (m_every <= 0) throw Error("snapshot at an earlier token: checkpoints are off (Session::set_checkpoints)");
  if (m_pending.empty())
    throw Error("snapshot at an earlier token: the sequence ends with a prompt nothing was sampled from yet; generate a token first");
  // the last checkpoint at or before the position (it is fed through position - 1, position pending)
  const Checkpoint* from = nullptr;
  for (const Checkpoint& c : m_checkpoints)
    if (c.fed <= position) from = &c;
  if (!from)
    throw Error("snapshot at token " + std::to_string(position) + ": this sequence was restored at token " + std::to_string(m_origin) +
                "; earlier tokens belong to the snapshot it came from");

  const State live = m_backend->get_state();
  Snapshot out;
  try {
    if (from->state.layers.empty()) m_backend->reset_state();
    else m_backend->set_state(from->state);
    int64_t pos = from->fed;
    while (pos < position) {
      auto feed = std::find_if(m_feeds.begin(), m_feeds.end(), [&](const Feed& f) { return f.start == pos; });
      if (feed != m_feeds.end()) {
        // a prompt: the same forward as then, or the part of it before the position
        const int64_t count = std::min(feed->count, position - pos);
        ForwardOptions fo;
        fo.scan = feed->scan;
        fo.chunk_size = feed->chunk;
        if (count == 1) m_backend->step(m_tokens[size_t(pos)], nullptr);
        else m_backend->forward(std::span<const int32_t>(m_tokens.data() + pos, size_t(count)), fo, nullptr);
        pos += count;
      } else {
        m_backend->step(m_tokens[size_t(pos)], nullptr);  // a generated token: one step, as decode fed it
        ++pos;
      }
    }
    out = make_snapshot(m_backend->get_state(), std::vector<int32_t>(m_tokens.begin(), m_tokens.begin() + position + 1),
                        {m_tokens[size_t(position)]}, sampler_before(position + 1));
  } catch (...) {
    m_backend->set_state(live);
    throw;
  }
  m_backend->set_state(live);  // the pending token is fed by the next run; no logits were needed
  return out;
}

}  // namespace mamba
