// The CPU backend: float32 math, OpenMP across heads/channels, GEMMs through BLAS.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <thread>

#include "engine/backend.h"
#include "engine/cpu_backend_base.h"
#include "engine/cpu_ops.h"
#include "engine/error.h"
#include "engine/mamba1_cpu.h"
#include "engine/ssd.h"
#include "engine/ssd_matrix.h"

extern "C" void openblas_set_num_threads(int);

namespace mamba {

namespace {

// On the CPU the chunk size only moves work between the quadratic in-chunk products and the state
// products (results agree to rounding); 32 measured fastest for the 130m shape at T = 512
// (1177 tok/s vs 747 at the checkpoint's 256). An explicit ForwardOptions::chunk_size overrides it.
constexpr int64_t kDefaultChunk = 32;
// Tokens per prefill segment: about 67 MB of activations for the 130m shape, 215 MB for 2.7b.
constexpr int64_t kSegment = 2048;

class CpuBackend final : public CpuBackendBase {
 public:
  using CpuBackendBase::CpuBackendBase;

  // Long prompts run in segments of about kSegment tokens, so memory stays bounded whatever the length;
  // a segment is a whole number of chunks, so the chunk boundaries (and the results) are those of one pass.
  void forward(std::span<const int32_t> tokens, const ForwardOptions& opt, float* logits) override {
    check_forward_options(opt);
    const int64_t T = static_cast<int64_t>(tokens.size());
    if (T == 0) throw Error("forward: no tokens");
    check_ids(tokens);
    const int64_t Q = opt.chunk_size > 0 ? opt.chunk_size : kDefaultChunk;
    const int64_t seg = std::max(Q, kSegment / Q * Q);
    const int64_t V = m_model->config.vocab_size;
    // Cancelling restores what the call found; copied only when the call can be cancelled.
    std::optional<State> saved_state;
    std::vector<float> saved_last;
    const bool saved_have_last = m_have_last;
    if (opt.cancel) {
      saved_state = m_state;
      saved_last = m_last;
    }
    Run r{opt.scan, Q, opt.all_logits && logits, opt.probes, opt.residuals, opt.cancel, &opt.progress, T, 0, opt.capture};
    if (opt.capture) {
      if (opt.capture->layer < 0 || opt.capture->layer >= m_model->config.n_layer) throw Error("capture: no such layer");
      LayerCapture& cap = *opt.capture;
      cap.T = 0;
      for (auto* v : {&cap.x, &cap.B, &cap.C, &cap.dt, &cap.y}) v->clear();
    }
    try {
      for (int64_t start = 0; start < T; start += seg) {
        const int64_t len = std::min(seg, T - start);
        const bool last = start + len == T;
        r.done = start;
        float* out = r.all_logits ? logits + start * V : last ? logits : nullptr;
        run(tokens.subspan(static_cast<size_t>(start), static_cast<size_t>(len)), r, last, out);
      }
    } catch (const Cancelled&) {
      m_state = std::move(*saved_state);
      m_last = std::move(saved_last);
      m_have_last = saved_have_last;
      throw;
    }
  }

  void step(int32_t token, float* logits, ProbeSink* probes) override {
    check_ids(std::span<const int32_t>(&token, 1));
    Run r{ScanMode::Recurrent, 1, false, probes, nullptr, nullptr, nullptr, 1, 0, nullptr};
    run(std::span<const int32_t>(&token, 1), r, true, logits);
  }

 private:
  void reserve(int64_t T) {
    if (T <= m_cap) return;
    const Config& c = m_model->config;
    m_resid.resize(static_cast<size_t>(T * c.d_model));
    m_h.resize(static_cast<size_t>(T * c.d_model));
    m_zx.resize(static_cast<size_t>(T * c.d_in_proj));
    m_xbc.resize(static_cast<size_t>(T * c.conv_dim));
    m_dt.resize(static_cast<size_t>(T * c.n_heads));
    m_y.resize(static_cast<size_t>(T * c.d_inner));
    m_cap = T;
  }

  void check_ids(std::span<const int32_t> tokens) const {
    const int64_t V = m_model->config.vocab_size;
    for (int32_t id : tokens)
      if (id < 0 || id >= V)
        throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(V - 1) + ")");
  }

  // What one forward asks of each of its segments.
  struct Run {
    ScanMode scan;
    int64_t chunk;
    bool all_logits;  // and the caller gave a buffer
    ProbeSink* probes;
    ResidualSink* residuals;
    const std::atomic<bool>* cancel;
    const std::function<void(int64_t, int64_t)>* progress;
    int64_t total, done;  // tokens of the whole forward; those before this segment
    LayerCapture* capture;
  };

  // Appends this segment's rows of the captured layer.
  void capture_rows(LayerCapture& cap, int64_t T) const {
    const Config& c = m_model->config;
    const int64_t E = c.d_inner, GN = c.n_groups * c.d_state, H = c.n_heads;
    for (int64_t t = 0; t < T; ++t) {
      const float* row = m_xbc.data() + t * c.conv_dim;
      cap.x.insert(cap.x.end(), row, row + E);  // float to double: exact
      cap.B.insert(cap.B.end(), row + E, row + E + GN);
      cap.C.insert(cap.C.end(), row + E + GN, row + E + 2 * GN);
    }
    cap.dt.insert(cap.dt.end(), m_dt.begin(), m_dt.begin() + T * H);
    cap.y.insert(cap.y.end(), m_y.begin(), m_y.begin() + T * E);
    cap.T += T;
  }

  // One segment through every layer. `last`: the forward's final segment, whose last row's logits are
  // kept for decode (and copied to `logits` when given); with r.all_logits every segment writes its rows.
  void run(std::span<const int32_t> tokens, const Run& r, bool last, float* logits) {
    const Config& c = m_model->config;
    const Weights& w = m_model->weights;
    const int64_t T = static_cast<int64_t>(tokens.size());
    const ScanMode scan = r.scan;
    const int64_t chunk = std::min(r.chunk, T);
    ProbeSink* probes = r.probes;
    omp_set_num_threads(m_threads);
    openblas_set_num_threads(m_threads);
    reserve(T);
    const int64_t D = c.d_model, E = c.d_inner, H = c.n_heads, P = c.head_dim, G = c.n_groups, N = c.d_state;

    for (int64_t t = 0; t < T; ++t) std::memcpy(m_resid.data() + t * D, w.embedding.data() + int64_t(tokens[t]) * D, sizeof(float) * D);

    if (probes) m_probe.resize(static_cast<size_t>(T * (3 * H + 1)));
    float* pr_sn = probes ? m_probe.data() : nullptr;     // (T, H) probes: ||S_t||
    float* pr_yn = probes ? pr_sn + T * H : nullptr;      // (T, H) ||y_t||
    float* pr_rn = probes ? pr_sn + 2 * T * H : nullptr;  // (T) ||r||
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const LayerWeights& lw = w.layers[static_cast<size_t>(l)];
      LayerState& ls = m_state.layers[static_cast<size_t>(l)];
      if (probes) cpu::group_norms(m_resid.data(), D, T, 1, D, pr_rn);
      cpu::rmsnorm(m_resid.data(), lw.norm.data(), m_h.data(), T, D, c.norm_eps);
      cpu::linear(m_h.data(), T, D, lw.in_proj.data(), c.d_in_proj, lw.in_proj_bias.empty() ? nullptr : lw.in_proj_bias.data(),
                  m_zx.data());
      const float* z = m_zx.data();
      cpu::causal_conv1d_silu(m_zx.data() + E, c.d_in_proj, T, c.conv_dim, c.d_conv, lw.conv_w.data(),
                              lw.conv_b.empty() ? nullptr : lw.conv_b.data(), ls.conv.data(), m_xbc.data());
      cpu::dt_softplus(m_zx.data() + E + c.conv_dim, c.d_in_proj, T, H, lw.dt_bias.data(), c.dt_min, c.dt_max, m_dt.data());
      if (!m_dt_edits.empty()) apply_dt_edits(m_dt_edits, l, m_dt.data(), T, H);

      SsdArgs a;
      a.T = T;
      a.H = H;
      a.P = P;
      a.G = G;
      a.N = N;
      a.x = m_xbc.data();
      a.ldx = c.conv_dim;
      a.B = m_xbc.data() + E;
      a.ldb = c.conv_dim;
      a.C = m_xbc.data() + E + G * N;
      a.ldc = c.conv_dim;
      a.dt = m_dt.data();
      a.lddt = H;
      a.A = lw.A.data();
      a.y = m_y.data();
      a.ldy = E;
      a.state = ls.ssm.data();
      a.state_norm = probes ? pr_sn : nullptr;
      if (scan == ScanMode::Chunked && T > 1) ssd_chunked(a, chunk);
      else ssd_recurrent(a);

      cpu::add_skip(m_xbc.data(), c.conv_dim, lw.D.data(), m_y.data(), T, H, P);
      if (probes) {
        cpu::group_norms(m_y.data(), E, T, H, P, pr_yn);
        probes->layer({l, m_state.n_tokens, T, H, m_dt.data(), pr_sn, pr_yn, pr_rn});
      }
      if (r.capture && r.capture->layer == l) {
        capture_rows(*r.capture, T);
        if (r.capture->stop_after) {
          m_state.n_tokens += T;
          return;
        }
      }
      cpu::gated_rmsnorm(m_y.data(), z, c.d_in_proj, lw.gnorm.data(), T, E, G, c.norm_eps);
      cpu::linear(m_y.data(), T, E, lw.out_proj.data(), D, lw.out_proj_bias.empty() ? nullptr : lw.out_proj_bias.data(), m_h.data());
      const int64_t n = T * D;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) m_resid[i] += m_h[i];
      if (r.residuals) r.residuals->residual(l, m_state.n_tokens, T, D, m_resid.data());
      if (r.progress && *r.progress) (*r.progress)(r.done + T * (l + 1) / c.n_layer, r.total);
      if (r.cancel && r.cancel->load()) throw Cancelled("prefill cancelled");
    }
    m_state.n_tokens += T;

    // Logits of every position into the caller's buffer, or of the last one into m_last (kept for decode).
    const int64_t V = c.vocab_size;
    const bool all = r.all_logits;
    if (!all && !last) return;
    const int64_t first = all ? 0 : T - 1, rows = T - first;
    cpu::rmsnorm(m_resid.data() + first * D, w.norm_f.data(), m_h.data(), rows, D, c.norm_eps);
    cpu::linear(m_h.data(), rows, D, w.lm_head_or_embedding().data(), V, nullptr, all ? logits : m_last.data());
    if (all) std::copy_n(logits + (T - 1) * V, V, m_last.data());
    else if (logits) std::copy_n(m_last.data(), V, logits);
    m_have_last = true;
  }

  int64_t m_cap = 0;
  std::vector<float> m_resid;  // (T, D)  residual stream, fp32
  std::vector<float> m_h;      // (T, D)  normed input / mixer output
  std::vector<float> m_zx;     // (T, d_in_proj)
  std::vector<float> m_xbc;    // (T, conv_dim) after conv + SiLU
  std::vector<float> m_dt;     // (T, H)
  std::vector<float> m_y;      // (T, E)
  std::vector<float> m_probe;  // (T, 3H + 1) one layer's probe norms, when probes are on
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const Model> model, const BackendOptions& opt) {
  if (model && model->config.mamba1()) return make_mamba1_cpu_backend(std::move(model), opt);
  return std::make_unique<CpuBackend>(std::move(model), opt);
}

}  // namespace mamba
