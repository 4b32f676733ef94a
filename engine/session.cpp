#include "engine/session.h"

#include <algorithm>

#include "engine/clock.h"
#include "engine/error.h"

namespace mamba {

Session::Session(std::unique_ptr<Backend> backend) : m_backend(std::move(backend)) {
  if (!m_backend) throw Error("session: no backend");
}

void Session::reset() {
  m_backend->reset_state();
  m_tokens.clear();
  m_pending.clear();
  m_have_logits = false;
}

void Session::flush_pending(std::span<const int32_t> more, ScanMode scan, int64_t chunk_size, const std::atomic<bool>* cancel,
                            const std::function<void(int64_t, int64_t)>* progress) {
  std::vector<int32_t> feed = m_pending;
  feed.insert(feed.end(), more.begin(), more.end());
  if (feed.empty()) return;
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
  }
  m_pending.clear();
  m_tokens.insert(m_tokens.end(), more.begin(), more.end());
  m_have_logits = true;
}

void Session::append(std::span<const int32_t> ids, ScanMode scan, int64_t chunk_size) { flush_pending(ids, scan, chunk_size); }

GenerateResult Session::generate(std::span<const int32_t> prompt, const GenerateOptions& opt,
                                 const std::function<void(const TokenEvent&)>& on_token, const std::atomic<bool>* cancel) {
  GenerateResult r;
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  opt.sampling.validate();
  if (opt.max_new_tokens < 0) throw Error("max new tokens must be >= 0");
  DecodeRequest req;
  req.prob = opt.probabilities || opt.top_alternatives > 0;
  req.top_n = opt.top_alternatives;
  req.steps = opt.max_new_tokens;
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

  // Padded embedding rows (ids >= vocab_valid) are never sampled, whatever the caller asked.
  SamplerParams sp = opt.sampling;
  const int64_t valid = model().config.vocab_valid;
  if (valid > 0 && valid < model().config.vocab_size) sp.n_valid = sp.n_valid < 0 ? valid : std::min(sp.n_valid, valid);
  if (opt.reseed || !m_sampler) m_sampler.emplace(sp);
  else m_sampler->set_params(sp);
  const int64_t eos = opt.eos_id >= 0 ? opt.eos_id : model().config.eos_token_id;
  std::vector<int32_t> stop;
  if (opt.stop_at_eos && eos >= 0) stop.push_back(static_cast<int32_t>(eos));
  req.stop = stop;

  // The history the repetition penalty reads: everything before this run's ids.
  const std::vector<int32_t> history = m_tokens;
  r.stop_reason = "length";
  if (cancel && cancel->load() && opt.max_new_tokens > 0) {
    r.stop_reason = "cancelled";
    r.decode_seconds = now_seconds() - t1;
    return r;
  }
  m_backend->decode(req, *m_sampler, history, [&](const DecodedToken& d) {
    TokenEvent ev;
    ev.index = static_cast<int64_t>(r.ids.size());
    ev.id = d.id;
    ev.info = d.info;
    // The token this run started from (if pending) is fed by now, as is every id but the newest.
    m_pending.assign(1, d.id);
    m_tokens.push_back(d.id);
    r.ids.push_back(d.id);
    m_have_logits = false;
    if (on_token) on_token(ev);
    return !(cancel && cancel->load());
  });
  if (!r.ids.empty() && !stop.empty() && r.ids.back() == stop[0]) r.stop_reason = "eos";
  else if (cancel && cancel->load() && static_cast<int64_t>(r.ids.size()) < opt.max_new_tokens) r.stop_reason = "cancelled";
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
}

}  // namespace mamba
