#include "engine/session.h"

#include <chrono>

#include "engine/error.h"

namespace mamba {

namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

Session::Session(std::unique_ptr<Backend> backend) : m_backend(std::move(backend)) {
  if (!m_backend) throw Error("session: no backend");
  m_logits.resize(static_cast<size_t>(m_backend->model().config.vocab_size));
}

void Session::reset() {
  m_backend->reset_state();
  m_tokens.clear();
  m_pending.clear();
  m_have_logits = false;
}

void Session::flush_pending(std::span<const int32_t> more, ScanMode scan, int64_t chunk_size) {
  std::vector<int32_t> feed = m_pending;
  feed.insert(feed.end(), more.begin(), more.end());
  if (feed.empty()) return;
  ForwardOptions fo;
  fo.scan = scan;
  fo.chunk_size = chunk_size;
  if (feed.size() == 1) m_backend->step(feed[0], m_logits.data());
  else m_backend->forward(feed, fo, m_logits.data());
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
  const double t0 = now_s();
  flush_pending(prompt, opt.scan, opt.chunk_size);
  if (!m_have_logits) throw Error("nothing to continue from: the prompt is empty");
  const double t1 = now_s();
  r.prefill_seconds = t1 - t0;
  const int64_t eos = opt.eos_id >= 0 ? opt.eos_id : model().config.eos_token_id;

  Sampler sampler(opt.sampling);
  const bool on_device =
      opt.device_sampling && m_backend->samples_on_device() && opt.top_alternatives == 0 && opt.sampling.repeat_penalty == 1.f;
  r.stop_reason = "length";
  // A backend that decodes chains of steps on its device takes whole chains while enough tokens remain:
  // ids arrive in bursts of `chain`, each with the draw it would have had one step at a time.
  const int chain = on_device ? m_backend->decode_chain() : 0;
  std::vector<int32_t> stop;
  if (opt.stop_at_eos && eos >= 0) stop.push_back(static_cast<int32_t>(eos));
  std::vector<double> draws;
  // Records a sampled id; true when it ends the generation.
  auto emit = [&](TokenEvent& ev) {
    m_pending.push_back(ev.id);
    m_tokens.push_back(ev.id);
    r.ids.push_back(ev.id);
    if (on_token) on_token(ev);
    if (opt.stop_at_eos && eos >= 0 && ev.id == eos) {
      r.stop_reason = "eos";
      return true;
    }
    return false;
  };
  for (int64_t i = 0; i < opt.max_new_tokens;) {
    if (cancel && cancel->load()) {
      r.stop_reason = "cancelled";
      break;
    }
    if (chain > 1 && i > 0 && opt.max_new_tokens - i >= chain) {
      draws.resize(static_cast<size_t>(chain));
      for (double& u : draws) u = sampler.next_uniform();
      // Empty only where the backend cannot chain these settings, which on_device already excludes.
      const std::vector<int32_t> ids = m_backend->step_sample_chain(m_pending.back(), opt.sampling, draws, stop);
      if (!ids.empty()) {
        m_have_logits = false;
        bool done = false;
        for (size_t k = 0; k < ids.size() && !done; ++k) {
          TokenEvent ev;
          ev.index = i++;
          ev.id = ids[k];
          m_pending.clear();  // the backend fed the pending token and every id but the last
          done = emit(ev);
        }
        if (done) break;
        continue;
      }
    }
    TokenEvent ev;
    ev.index = i++;
    std::optional<int32_t> id;
    if (on_device) {
      const double u = sampler.next_uniform();
      if (ev.index == 0) {
        id = m_backend->sample_last(opt.sampling, u);
      } else if ((id = m_backend->step_sample(m_pending.back(), opt.sampling, u))) {
        m_pending.clear();
        m_have_logits = false;  // the host copy is stale; the next flush refreshes it
      }
    }
    if (!id) {
      if (ev.index > 0) flush_pending({}, ScanMode::Recurrent, 0);
      id = sampler.sample(m_logits, m_tokens, &ev.info, opt.top_alternatives);
    }
    ev.id = *id;
    if (emit(ev)) break;
  }
  r.decode_seconds = now_s() - t1;
  return r;
}

State Session::state() const { return m_backend->get_state(); }

void Session::restore(const State& s, std::vector<int32_t> tokens, std::vector<int32_t> pending) {
  m_backend->set_state(s);
  m_tokens = std::move(tokens);
  m_pending = std::move(pending);
  m_have_logits = false;
  if (m_pending.empty() && !m_tokens.empty()) {
    // the logits after the last fed token are not part of the state: recompute them by re-feeding it
    throw Error("restore: the last token must be pending so its logits can be recomputed");
  }
}

}  // namespace mamba
