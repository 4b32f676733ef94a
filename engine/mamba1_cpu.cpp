// The Mamba-1 CPU backend (engine/mamba1_cpu.h).
#include "engine/mamba1_cpu.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <optional>
#include <thread>

#include "engine/cpu_backend_base.h"
#include "engine/cpu_ops.h"
#include "engine/error.h"
#include "engine/mamba1_scan.h"

extern "C" void openblas_set_num_threads(int);

namespace mamba {

namespace {

// The chunked scan only moves work around on the CPU; 64 keeps a chunk's inputs in cache.
constexpr int64_t kMamba1DefaultChunk = 64;
constexpr int64_t kMamba1Segment = 2048;  // tokens per forward segment: bounds the activations' memory

// Activations of T positions, reused across layers and calls.
struct Mamba1Buffers {
  int64_t cap = 0;
  std::vector<float> resid;  // (T, D)  residual stream, fp32
  std::vector<float> h;      // (T, D)  normed input / mixer output
  std::vector<float> xz;     // (T, 2E) x | z
  std::vector<float> x;      // (T, E)  after conv + SiLU
  std::vector<float> dbc;    // (T, R + 2N)
  std::vector<float> dtlow;  // (T, R)
  std::vector<float> dt;     // (T, E)  raw, then after softplus
  std::vector<float> y;      // (T, E)
  std::vector<float> probe;  // (T, 2S + 1) one layer's probe norms, when probes are on

  void reserve(const Config& c, int64_t T) {
    if (T <= cap) return;
    const auto n = [T](int64_t w) { return static_cast<size_t>(T * w); };
    resid.resize(n(c.d_model));
    h.resize(n(c.d_model));
    xz.resize(n(2 * c.d_inner));
    x.resize(n(c.d_inner));
    dbc.resize(n(c.d_x_proj));
    dtlow.resize(n(c.dt_rank));
    dt.resize(n(c.d_inner));
    y.resize(n(c.d_inner));
    cap = T;
  }
};

// One layer over T positions, from the residual in b.resid (updated in place). Probes, when given,
// receive the layer's values for positions first..first+T.
void run_layer(const Config& c, const Mamba1LayerWeights& lw, LayerState& ls, Mamba1Buffers& b, int64_t T, ScanMode scan, int64_t chunk,
               ProbeSink* probes, int64_t layer, int64_t first, Mamba1LayerTrace* trace, std::span<const DtEdit> edits = {}) {
  const int64_t D = c.d_model, E = c.d_inner, N = c.d_state, R = c.dt_rank, S = probe_groups(c);
  float* pr_sn = nullptr;
  float* pr_yn = nullptr;
  float* pr_rn = nullptr;
  if (probes) {
    b.probe.resize(static_cast<size_t>(T * (2 * S + 1)));
    pr_sn = b.probe.data();
    pr_yn = pr_sn + T * S;
    pr_rn = pr_sn + 2 * T * S;
    cpu::group_norms(b.resid.data(), D, T, 1, D, pr_rn);
  }
  cpu::rmsnorm(b.resid.data(), lw.norm.data(), b.h.data(), T, D, c.norm_eps);
  cpu::linear(b.h.data(), T, D, lw.in_proj.data(), 2 * E, lw.in_proj_bias.empty() ? nullptr : lw.in_proj_bias.data(), b.xz.data());
  cpu::causal_conv1d_silu(b.xz.data(), 2 * E, T, E, c.d_conv, lw.conv_w.data(), lw.conv_b.empty() ? nullptr : lw.conv_b.data(),
                          ls.conv.data(), b.x.data());
  cpu::linear(b.x.data(), T, E, lw.x_proj.data(), c.d_x_proj, nullptr, b.dbc.data());
  for (int64_t t = 0; t < T; ++t) std::copy_n(b.dbc.data() + t * c.d_x_proj, R, b.dtlow.data() + t * R);
  cpu::linear(b.dtlow.data(), T, R, lw.dt_proj.data(), E, nullptr, b.dt.data());
  cpu::dt_softplus(b.dt.data(), E, T, E, lw.dt_proj_bias.data(), 0.0, INFINITY, b.dt.data());
  if (!edits.empty()) apply_dt_edits(edits, layer, b.dt.data(), T, E);  // a "head" of Mamba-1 is a channel

  SelectiveScanArgs a;
  a.T = T;
  a.E = E;
  a.N = N;
  a.x = b.x.data();
  a.ldx = E;
  a.dt = b.dt.data();
  a.B = b.dbc.data() + R;
  a.C = b.dbc.data() + R + N;
  a.ldbc = c.d_x_proj;
  a.A = lw.A.data();
  a.D = lw.D.data();
  a.y = b.y.data();
  a.state = ls.ssm.data();
  a.state_norm = pr_sn;
  a.groups = S;
  if (scan == ScanMode::Chunked && T > 1) selective_scan_chunked(a, chunk);
  else selective_scan_recurrent(a);

  if (trace) {
    trace->x.assign(b.x.begin(), b.x.begin() + T * E);
    trace->dt.assign(b.dt.begin(), b.dt.begin() + T * E);
    trace->B.resize(static_cast<size_t>(T * N));
    trace->C.resize(static_cast<size_t>(T * N));
    for (int64_t t = 0; t < T; ++t) {
      std::copy_n(a.B + t * a.ldbc, N, trace->B.data() + t * N);
      std::copy_n(a.C + t * a.ldbc, N, trace->C.data() + t * N);
    }
    trace->A = lw.A;
    trace->D = lw.D;
    trace->y.assign(b.y.begin(), b.y.begin() + T * E);
  }
  if (probes) {
    cpu::group_norms(b.y.data(), E, T, S, E / S, pr_yn);
    LayerProbe p{layer, first, T, E, b.dt.data(), pr_sn, pr_yn, pr_rn};
    p.S = S;
    probes->layer(p);
  }
  for (int64_t t = 0; t < T; ++t) {
    float* y = b.y.data() + t * E;
    const float* z = b.xz.data() + t * 2 * E + E;
#pragma omp simd
    for (int64_t e = 0; e < E; ++e) y[e] *= cpu::silu(z[e]);
  }
  cpu::linear(b.y.data(), T, E, lw.out_proj.data(), D, lw.out_proj_bias.empty() ? nullptr : lw.out_proj_bias.data(), b.h.data());
  const int64_t n = T * D;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) b.resid[i] += b.h[i];
}

void embed(const Model& m, std::span<const int32_t> tokens, Mamba1Buffers& b) {
  const Config& c = m.config;
  for (int32_t id : tokens)
    if (id < 0 || id >= c.vocab_size)
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(c.vocab_size - 1) + ")");
  b.reserve(c, static_cast<int64_t>(tokens.size()));
  for (size_t t = 0; t < tokens.size(); ++t)
    std::memcpy(b.resid.data() + t * c.d_model, m.weights.embedding.data() + int64_t(tokens[t]) * c.d_model, sizeof(float) * c.d_model);
}

class Mamba1CpuBackend final : public CpuBackendBase {
 public:
  Mamba1CpuBackend(std::shared_ptr<const Model> model, const BackendOptions& opt) : CpuBackendBase(checked(std::move(model)), opt) {}

  // Long prompts run in segments of kMamba1Segment tokens, so memory stays bounded whatever the length; the
  // state carries across them exactly. Cancelling restores what the call found.
  void forward(std::span<const int32_t> tokens, const ForwardOptions& opt, float* logits) override {
    check_forward_options(opt);
    if (opt.capture)
      throw Error(
          "capturing a layer for the SSD matrix is Mamba-2's (one matrix per head); Mamba-1's per-channel matrices come from "
          "mamba1_layer_attention");
    const int64_t T = static_cast<int64_t>(tokens.size()), V = m_model->config.vocab_size;
    if (T == 0) throw Error("forward: no tokens");
    embed_check(tokens);
    const int64_t Q = opt.chunk_size > 0 ? opt.chunk_size : kMamba1DefaultChunk;
    std::optional<State> saved_state;
    std::vector<float> saved_last;
    const bool saved_have_last = m_have_last;
    if (opt.cancel) {
      saved_state = m_state;
      saved_last = m_last;
    }
    try {
      for (int64_t start = 0; start < T; start += kMamba1Segment) {
        const int64_t len = std::min(kMamba1Segment, T - start);
        const bool last = start + len == T, all = opt.all_logits && logits;
        float* out = all ? logits + start * V : last ? logits : nullptr;
        Progress pr{opt.cancel, opt.progress ? &opt.progress : nullptr, start, T};
        run(tokens.subspan(static_cast<size_t>(start), static_cast<size_t>(len)), opt.scan, Q, all, out, opt.probes, &pr);
      }
    } catch (const Cancelled&) {
      m_state = std::move(*saved_state);
      m_last = std::move(saved_last);
      m_have_last = saved_have_last;
      throw;
    }
  }
  void step(int32_t token, float* logits, ProbeSink* probes) override {
    run(std::span<const int32_t>(&token, 1), ScanMode::Recurrent, 1, false, logits, probes, nullptr);
  }

 private:
  static std::shared_ptr<const Model> checked(std::shared_ptr<const Model> m) {
    if (!m->config.mamba1()) throw Error("the Mamba-1 backend was given a " + std::string(arch_name(m->config.arch)) + " model");
    return m;
  }

  struct Progress {
    const std::atomic<bool>* cancel;
    const std::function<void(int64_t, int64_t)>* report;
    int64_t done, total;  // tokens before this segment, and in the whole call
  };

  void embed_check(std::span<const int32_t> tokens) const {
    const int64_t V = m_model->config.vocab_size;
    for (int32_t id : tokens)
      if (id < 0 || id >= V)
        throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(V - 1) + ")");
  }

  void run(std::span<const int32_t> tokens, ScanMode scan, int64_t chunk, bool all_logits, float* logits, ProbeSink* probes,
           const Progress* pr) {
    const Config& c = m_model->config;
    const Weights& w = m_model->weights;
    const int64_t T = static_cast<int64_t>(tokens.size()), D = c.d_model, V = c.vocab_size;
    if (T == 0) throw Error("forward: no tokens");
    omp_set_num_threads(m_threads);
    openblas_set_num_threads(m_threads);
    embed(*m_model, tokens, m_buf);  // validates the ids before the state is touched
    for (int64_t l = 0; l < c.n_layer; ++l) {
      run_layer(c, w.layers1[static_cast<size_t>(l)], m_state.layers[static_cast<size_t>(l)], m_buf, T, scan, chunk, probes, l,
                m_state.n_tokens, nullptr, m_dt_edits);
      if (pr && pr->report && *pr->report) (*pr->report)(pr->done + T * (l + 1) / c.n_layer, pr->total);
      if (pr && pr->cancel && pr->cancel->load()) throw Cancelled("prefill cancelled");
    }
    // Logits of every position into the caller's buffer, or of the last one into m_last (kept for decode).
    const bool all = all_logits && logits;
    const int64_t first = all ? 0 : T - 1, rows = T - first;
    cpu::rmsnorm(m_buf.resid.data() + first * D, w.norm_f.data(), m_buf.h.data(), rows, D, c.norm_eps);
    cpu::linear(m_buf.h.data(), rows, D, w.lm_head_or_embedding().data(), V, nullptr, all ? logits : m_last.data());
    if (all) std::copy_n(logits + (T - 1) * V, V, m_last.data());
    else if (logits) std::copy_n(m_last.data(), V, logits);
    m_have_last = true;
    m_state.n_tokens += T;
  }

  Mamba1Buffers m_buf;
};

}  // namespace

std::unique_ptr<Backend> make_mamba1_cpu_backend(std::shared_ptr<const Model> model, const BackendOptions& opt) {
  return std::make_unique<Mamba1CpuBackend>(std::move(model), opt);
}

Mamba1LayerTrace trace_mamba1_layer(const Model& m, std::span<const int32_t> ids, int64_t layer) {
  const Config& c = m.config;
  if (!c.mamba1()) throw Error("hidden attention per channel is a Mamba-1 view; this is a " + std::string(arch_name(c.arch)) + " model");
  if (layer < 0 || layer >= c.n_layer) throw Error("layer " + std::to_string(layer) + " is outside 0.." + std::to_string(c.n_layer - 1));
  if (ids.empty()) throw Error("hidden attention: no tokens");
  Mamba1Buffers b;
  embed(m, ids, b);
  State st(c);
  Mamba1LayerTrace tr;
  tr.layer = layer;
  tr.T = static_cast<int64_t>(ids.size());
  tr.E = c.d_inner;
  tr.N = c.d_state;
  for (int64_t l = 0; l <= layer; ++l)
    run_layer(c, m.weights.layers1[static_cast<size_t>(l)], st.layers[static_cast<size_t>(l)], b, tr.T, ScanMode::Recurrent, 1, nullptr, l,
              0, l == layer ? &tr : nullptr);
  return tr;
}

std::vector<double> mamba1_layer_attention(const Model& m, std::span<const int32_t> ids, int64_t layer, int64_t channel) {
  const Mamba1LayerTrace tr = trace_mamba1_layer(m, ids, layer);
  SelectiveScanArgs a;
  a.T = tr.T;
  a.E = tr.E;
  a.N = tr.N;
  a.x = tr.x.data();
  a.ldx = tr.E;
  a.dt = tr.dt.data();
  a.B = tr.B.data();
  a.C = tr.C.data();
  a.ldbc = tr.N;
  a.A = tr.A.data();
  return mamba1_hidden_attention(a, channel);
}

}  // namespace mamba
