#pragma once
// A Mamba-2 forward written plainly in float64 inside the tests, one token at a time (DESIGN.md's
// equations, nothing shared with the engine's ops), recording every layer's internals. Probe and SSD
// matrix tests check the engine's values against it.
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/model.h"

namespace mamba::test {

struct NaiveLayer {
  std::vector<double> resid_in;    // (T, D) residual stream entering the layer
  std::vector<double> x;           // (T, E) after conv + SiLU
  std::vector<double> B, C;        // (T, G, N)
  std::vector<double> dt;          // (T, H) after softplus and the clamp
  std::vector<double> y;           // (T, E) SSD output + D x, before the gate
  std::vector<double> state_norm;  // (T, H) ||S_t||_F after token t
};

struct NaiveRun {
  std::vector<NaiveLayer> layers;
  std::vector<double> logits;  // (T, V)
};

inline NaiveRun naive_mamba2(const Model& m, const std::vector<int32_t>& ids) {
  const Config& c = m.config;
  const Weights& w = m.weights;
  const int64_t T = static_cast<int64_t>(ids.size()), D = c.d_model, E = c.d_inner, H = c.n_heads, P = c.head_dim;
  const int64_t G = c.n_groups, N = c.d_state, K = c.d_conv, CD = c.conv_dim, Din = c.d_in_proj, V = c.vocab_size;
  auto rms = [&](const double* v, const float* wt, int64_t n, double* out) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += v[i] * v[i];
    const double r = 1.0 / std::sqrt(s / double(n) + c.norm_eps);
    for (int64_t i = 0; i < n; ++i) out[i] = v[i] * r * wt[i];
  };
  auto silu = [](double v) { return v / (1.0 + std::exp(-v)); };
  NaiveRun run;
  std::vector<double> r(static_cast<size_t>(T * D));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < D; ++i) r[t * D + i] = w.embedding[ids[t] * D + i];
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerWeights& lw = w.layers[static_cast<size_t>(l)];
    NaiveLayer L;
    L.resid_in = r;
    L.x.resize(T * E);
    L.B.resize(T * G * N);
    L.C.resize(T * G * N);
    L.dt.resize(T * H);
    L.y.resize(T * E);
    L.state_norm.resize(T * H);
    std::vector<double> zxbcdt(static_cast<size_t>(T * Din)), h(D);
    for (int64_t t = 0; t < T; ++t) {
      rms(&r[t * D], lw.norm.data(), D, h.data());
      for (int64_t o = 0; o < Din; ++o) {
        double s = lw.in_proj_bias.empty() ? 0.0 : lw.in_proj_bias[o];
        for (int64_t i = 0; i < D; ++i) s += double(lw.in_proj[o * D + i]) * h[i];
        zxbcdt[t * Din + o] = s;
      }
    }
    // causal depthwise conv over xBC (zero history), SiLU
    std::vector<double> xbc(static_cast<size_t>(T * CD));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t ch = 0; ch < CD; ++ch) {
        double s = lw.conv_b.empty() ? 0.0 : lw.conv_b[ch];
        for (int64_t k = 0; k < K; ++k) {
          const int64_t src = t - (K - 1) + k;
          if (src >= 0) s += double(lw.conv_w[ch * K + k]) * zxbcdt[src * Din + E + ch];
        }
        xbc[t * CD + ch] = silu(s);
      }
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t i = 0; i < E; ++i) L.x[t * E + i] = xbc[t * CD + i];
      for (int64_t i = 0; i < G * N; ++i) {
        L.B[t * G * N + i] = xbc[t * CD + E + i];
        L.C[t * G * N + i] = xbc[t * CD + E + G * N + i];
      }
      for (int64_t hh = 0; hh < H; ++hh) {
        const double v = zxbcdt[t * Din + E + CD + hh] + lw.dt_bias[hh];
        double d = v > 20.0 ? v : std::log1p(std::exp(v));
        d = std::min(std::max(d, c.dt_min), c.dt_max);
        L.dt[t * H + hh] = d;
      }
    }
    // the recurrence, one head at a time
    std::vector<double> S(static_cast<size_t>(P * N));
    for (int64_t hh = 0; hh < H; ++hh) {
      const int64_t g = hh / (H / G);
      std::fill(S.begin(), S.end(), 0.0);
      for (int64_t t = 0; t < T; ++t) {
        const double dt = L.dt[t * H + hh], decay = std::exp(dt * double(lw.A[hh]));
        double sq = 0;
        for (int64_t p = 0; p < P; ++p) {
          double y = 0;
          for (int64_t n = 0; n < N; ++n) {
            double& s = S[p * N + n];
            s = decay * s + dt * L.x[t * E + hh * P + p] * L.B[(t * G + g) * N + n];
            y += s * L.C[(t * G + g) * N + n];
            sq += s * s;
          }
          L.y[t * E + hh * P + p] = y + double(lw.D[hh]) * L.x[t * E + hh * P + p];
        }
        L.state_norm[t * H + hh] = std::sqrt(sq);
      }
    }
    // gate, grouped RMSNorm, out_proj, residual
    const int64_t gs = E / G;
    std::vector<double> v(E);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t i = 0; i < E; ++i) v[i] = L.y[t * E + i] * silu(zxbcdt[t * Din + i]);
      for (int64_t g = 0; g < G; ++g) rms(&v[g * gs], lw.gnorm.data() + g * gs, gs, &v[g * gs]);
      for (int64_t o = 0; o < D; ++o) {
        double s = lw.out_proj_bias.empty() ? 0.0 : lw.out_proj_bias[o];
        for (int64_t i = 0; i < E; ++i) s += double(lw.out_proj[o * E + i]) * v[i];
        r[t * D + o] += s;
      }
    }
    run.layers.push_back(std::move(L));
  }
  run.logits.resize(T * V);
  const Tensor& lm = w.lm_head_or_embedding();
  std::vector<double> h(D);
  for (int64_t t = 0; t < T; ++t) {
    rms(&r[t * D], w.norm_f.data(), D, h.data());
    for (int64_t o = 0; o < V; ++o) {
      double s = 0;
      for (int64_t i = 0; i < D; ++i) s += double(lm[o * D + i]) * h[i];
      run.logits[t * V + o] = s;
    }
  }
  return run;
}

}  // namespace mamba::test
