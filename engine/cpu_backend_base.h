#pragma once
// What the CPU backends of both architectures share (engine/cpu_backend.cpp, engine/mamba1_cpu.cpp): the model,
// the thread count, the recurrent state, the last logits and the dt edits, with the Backend methods that only
// read or reset them. Each backend adds its own forward() and step().
#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/backend.h"
#include "engine/dt_edit.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/state.h"

namespace mamba {

class CpuBackendBase : public Backend {
 public:
  CpuBackendBase(std::shared_ptr<const Model> model, const BackendOptions& opt) : m_model(std::move(model)) {
    if (opt.dtype != "f32") throw Error("the CPU backend computes with f32 weights (asked for " + opt.dtype + ")");
    m_threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    m_state.reset(m_model->config);
    m_last.resize(static_cast<size_t>(m_model->config.vocab_size));
  }

  std::string name() const override { return "cpu (" + std::to_string(m_threads) + " threads)"; }
  const Model& model() const override { return *m_model; }
  void reset_state() override {
    m_state.reset(m_model->config);
    m_have_last = false;
  }
  void set_state(const State& s) override {
    if (!s.matches(m_model->config)) throw Error("state does not match the model's shapes");
    m_state = s;
    m_have_last = false;
  }
  State get_state() const override { return m_state; }
  int64_t n_tokens() const override { return m_state.n_tokens; }
  uint64_t weight_bytes() const override {
    const Config& c = m_model->config;
    return static_cast<uint64_t>(c.n_params() - (c.tie_embeddings ? 0 : c.vocab_size * c.d_model)) * 4;  // the embedding row read is tiny
  }
  void last_logits(std::span<float> out) const override {
    if (!m_have_last) throw Error("no logits yet: nothing has been run through the model");
    if (out.size() != m_last.size()) throw Error("last_logits: wrong output size");
    std::copy(m_last.begin(), m_last.end(), out.begin());
  }
  // dt edits name a layer and a head (Mamba-1's heads are its channels).
  void set_dt_edits(std::vector<DtEdit> edits) override {
    check_dt_edits(edits, m_model->config);
    m_dt_edits = std::move(edits);
  }
  std::vector<DtEdit> dt_edits() const override { return m_dt_edits; }

 protected:
  std::shared_ptr<const Model> m_model;
  State m_state;
  int m_threads = 1;
  std::vector<float> m_last;  // (V) logits after the last token run
  bool m_have_last = false;
  std::vector<DtEdit> m_dt_edits;
};

}  // namespace mamba
