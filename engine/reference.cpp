#include "engine/reference.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "engine/error.h"

namespace mamba {

namespace {

double silu(double v) { return v / (1.0 + std::exp(-v)); }

// out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w
void rmsnorm(const double* x, const float* w, double* out, int64_t T, int64_t D, double eps) {
#pragma omp parallel for schedule(static) if (T > 8)
  for (int64_t t = 0; t < T; ++t) {
    const double* xr = x + t * D;
    double ss = 0.0;
    for (int64_t i = 0; i < D; ++i) ss += xr[i] * xr[i];
    const double r = 1.0 / std::sqrt(ss / double(D) + eps);
    for (int64_t i = 0; i < D; ++i) out[t * D + i] = xr[i] * r * double(w[i]);
  }
}

// The SSD's operands for one layer; x, B, C with row stride ld, dt (T, H), y (T, H*P).
struct SsdF64 {
  int64_t T = 0, H = 0, P = 0, G = 0, N = 0, ld = 0;
  const double *x = nullptr, *B = nullptr, *C = nullptr, *dt = nullptr, *A = nullptr;
  double* y = nullptr;
  double* state = nullptr;  // (H, P, N) in/out
};

// S_t = exp(dt_t A) S_{t-1} + dt_t x_t B_t^T,  y_t = S_t C_t.
void ssd_recurrent(const SsdF64& a) {
#pragma omp parallel for schedule(static) if (a.H > 1)
  for (int64_t h = 0; h < a.H; ++h) {
    const int64_t P = a.P, N = a.N, g = h / (a.H / a.G);
    double* S = a.state + h * P * N;
    for (int64_t t = 0; t < a.T; ++t) {
      const double dt = a.dt[t * a.H + h], decay = std::exp(dt * a.A[h]);
      const double* x = a.x + t * a.ld + h * P;
      const double* B = a.B + t * a.ld + g * N;
      const double* C = a.C + t * a.ld + g * N;
      for (int64_t p = 0; p < P; ++p) {
        double* Sp = S + p * N;
        const double dx = dt * x[p];
        double acc = 0.0;
        for (int64_t n = 0; n < N; ++n) {
          Sp[n] = decay * Sp[n] + dx * B[n];
          acc += Sp[n] * C[n];
        }
        a.y[t * a.H * P + h * P + p] = acc;
      }
    }
  }
}

// ssd_minimal's four steps chunk by chunk, with segment sums of dt*A inside each chunk:
// 1. y_i = sum_{j<=i} (C_i.B_j) exp(cum_i - cum_j) dt_j x_j          (diagonal block)
// 4. y_i += exp(cum_i) C_i . S_in                                     (off-diagonal, from the entry state)
// 2. S_c = sum_j exp(cum_last - cum_j) dt_j x_j B_j^T                 (chunk state)
// 3. S_in <- exp(cum_last) S_in + S_c                                 (state passing)
void ssd_chunked(const SsdF64& a, int64_t Q) {
#pragma omp parallel for schedule(dynamic) if (a.H > 1)
  for (int64_t h = 0; h < a.H; ++h) {
    const int64_t P = a.P, N = a.N, g = h / (a.H / a.G);
    double* S = a.state + h * P * N;
    std::vector<double> cum(static_cast<size_t>(Q)), Sc(static_cast<size_t>(P * N));
    for (int64_t t0 = 0; t0 < a.T; t0 += Q) {
      const int64_t len = std::min(Q, a.T - t0);
      double run = 0.0;
      for (int64_t i = 0; i < len; ++i) cum[i] = (run += a.dt[(t0 + i) * a.H + h] * a.A[h]);
      for (int64_t i = 0; i < len; ++i) {
        const double* Ci = a.C + (t0 + i) * a.ld + g * N;
        double* y = a.y + (t0 + i) * a.H * P + h * P;
        for (int64_t p = 0; p < P; ++p) y[p] = 0.0;
        for (int64_t j = 0; j <= i; ++j) {
          const double* Bj = a.B + (t0 + j) * a.ld + g * N;
          double cb = 0.0;
          for (int64_t n = 0; n < N; ++n) cb += Ci[n] * Bj[n];
          const double w = cb * std::exp(cum[i] - cum[j]) * a.dt[(t0 + j) * a.H + h];
          const double* xj = a.x + (t0 + j) * a.ld + h * P;
          for (int64_t p = 0; p < P; ++p) y[p] += w * xj[p];
        }
        const double in = std::exp(cum[i]);
        for (int64_t p = 0; p < P; ++p) {
          double acc = 0.0;
          for (int64_t n = 0; n < N; ++n) acc += S[p * N + n] * Ci[n];
          y[p] += in * acc;
        }
      }
      std::fill(Sc.begin(), Sc.end(), 0.0);
      for (int64_t j = 0; j < len; ++j) {
        const double coef = std::exp(cum[len - 1] - cum[j]) * a.dt[(t0 + j) * a.H + h];
        const double* Bj = a.B + (t0 + j) * a.ld + g * N;
        const double* xj = a.x + (t0 + j) * a.ld + h * P;
        for (int64_t p = 0; p < P; ++p)
          for (int64_t n = 0; n < N; ++n) Sc[p * N + n] += coef * xj[p] * Bj[n];
      }
      const double decay = std::exp(cum[len - 1]);
      for (int64_t k = 0; k < P * N; ++k) S[k] = decay * S[k] + Sc[k];
    }
  }
}

}  // namespace

void linear_f64(const double* x, int64_t T, int64_t K, const float* W, int64_t N, const float* bias, double* out) {
  // Rows of W per block: about 4 MiB of doubles, so the converted copy stays small next to the model.
  const int64_t rows = std::max<int64_t>(1, (int64_t(1) << 19) / std::max<int64_t>(1, K));
  std::vector<double> Wd(static_cast<size_t>(std::min(rows, N) * K));
  for (int64_t r0 = 0; r0 < N; r0 += rows) {
    const int64_t n = std::min(rows, N - r0);
    const float* src = W + r0 * K;
#pragma omp parallel for schedule(static) if (n * K > 65536)
    for (int64_t i = 0; i < n * K; ++i) Wd[static_cast<size_t>(i)] = double(src[i]);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T), static_cast<int>(n), static_cast<int>(K), 1.0, x,
                static_cast<int>(K), Wd.data(), static_cast<int>(K), 0.0, out + r0, static_cast<int>(N));
  }
  if (bias)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < N; ++j) out[t * N + j] += double(bias[j]);
}

ReferenceModel::ReferenceModel(std::shared_ptr<const Model> model) : m_model(std::move(model)) {
  const Config& c = m_model->config;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerWeights& lw = m_model->weights.layers[static_cast<size_t>(l)];
    if (lw.A_log.size() != static_cast<size_t>(c.n_heads))
      throw Error("float64 reference: layer " + std::to_string(l) + " has no A_log (the reference takes A = -exp(A_log) in double)");
    std::vector<double> A(static_cast<size_t>(c.n_heads));
    for (int64_t h = 0; h < c.n_heads; ++h) {
      A[h] = -std::exp(double(lw.A_log[h]));
      if (std::abs(A[h] - double(lw.A[h])) > 1e-6 * std::abs(A[h]))
        throw Error("float64 reference: layer " + std::to_string(l) + " head " + std::to_string(h) + ": A = " + std::to_string(lw.A[h]) +
                    " is not -exp(A_log) = " + std::to_string(A[h]) + " (A was changed without A_log)");
    }
    m_A.push_back(std::move(A));
  }
  reset();
}

void ReferenceModel::reset() {
  const Config& c = m_model->config;
  m_state.conv.assign(static_cast<size_t>(c.n_layer), std::vector<double>(static_cast<size_t>(c.conv_dim * (c.d_conv - 1)), 0.0));
  m_state.ssm.assign(static_cast<size_t>(c.n_layer), std::vector<double>(static_cast<size_t>(c.n_heads * c.head_dim * c.d_state), 0.0));
  m_state.n_tokens = 0;
}

void ReferenceModel::logits_of(const double* r, int64_t n, double* out) const {
  const Config& c = m_model->config;
  const Weights& w = m_model->weights;
  std::vector<double> h(static_cast<size_t>(n * c.d_model));
  rmsnorm(r, w.norm_f.data(), h.data(), n, c.d_model, c.norm_eps);
  linear_f64(h.data(), n, c.d_model, w.lm_head_or_embedding().data(), c.vocab_size, nullptr, out);
}

void ReferenceModel::forward(std::span<const int32_t> ids, const ReferenceOptions& opt, double* logits) {
  const Config& c = m_model->config;
  const Weights& w = m_model->weights;
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T == 0) throw Error("forward: no tokens");
  for (int32_t id : ids)
    if (id < 0 || id >= c.vocab_size)
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(c.vocab_size - 1) + ")");
  const int64_t Q = opt.chunk_size > 0 ? opt.chunk_size : c.chunk_size;
  const int64_t D = c.d_model, E = c.d_inner, H = c.n_heads, P = c.head_dim, G = c.n_groups, N = c.d_state;
  const int64_t CD = c.conv_dim, K = c.d_conv, W = K - 1, Din = c.d_in_proj;

  std::vector<double> resid(static_cast<size_t>(T * D)), h(static_cast<size_t>(T * D)), zx(static_cast<size_t>(T * Din)),
      xbc(static_cast<size_t>(T * CD)), dt(static_cast<size_t>(T * H)), y(static_cast<size_t>(T * E));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < D; ++i) resid[t * D + i] = double(w.embedding[int64_t(ids[t]) * D + i]);

  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerWeights& lw = w.layers[static_cast<size_t>(l)];
    std::vector<double>& conv = m_state.conv[static_cast<size_t>(l)];
    rmsnorm(resid.data(), lw.norm.data(), h.data(), T, D, c.norm_eps);
    linear_f64(h.data(), T, D, lw.in_proj.data(), Din, lw.in_proj_bias.empty() ? nullptr : lw.in_proj_bias.data(), zx.data());

    // Depthwise causal conv over xBC, left-padded with the carried window, then SiLU.
#pragma omp parallel for schedule(static) if (CD >= 256)
    for (int64_t ch = 0; ch < CD; ++ch) {
      for (int64_t t = 0; t < T; ++t) {
        double acc = lw.conv_b.empty() ? 0.0 : double(lw.conv_b[ch]);
        for (int64_t k = 0; k < K; ++k) {
          const int64_t r = t + k - W;  // input time; negative reads the window
          const double v = r < 0 ? conv[ch * W + (W + r)] : zx[r * Din + E + ch];
          acc += double(lw.conv_w[ch * K + k]) * v;
        }
        xbc[t * CD + ch] = silu(acc);
      }
      std::vector<double> win(static_cast<size_t>(W));
      for (int64_t k = 0; k < W; ++k) {
        const int64_t r = T - W + k;
        win[k] = r < 0 ? conv[ch * W + (W + r)] : zx[r * Din + E + ch];
      }
      std::copy(win.begin(), win.end(), conv.begin() + ch * W);
    }

    for (int64_t t = 0; t < T; ++t)
      for (int64_t hh = 0; hh < H; ++hh) {
        const double v = zx[t * Din + E + CD + hh] + double(lw.dt_bias[hh]);
        double s = v > 20.0 ? v : std::log1p(std::exp(v));  // torch's softplus threshold
        s = std::min(std::max(s, c.dt_min), c.dt_max);
        dt[t * H + hh] = s;
      }

    SsdF64 a;
    a.T = T;
    a.H = H;
    a.P = P;
    a.G = G;
    a.N = N;
    a.ld = CD;
    a.x = xbc.data();
    a.B = xbc.data() + E;
    a.C = xbc.data() + E + G * N;
    a.dt = dt.data();
    a.A = m_A[static_cast<size_t>(l)].data();
    a.y = y.data();
    a.state = m_state.ssm[static_cast<size_t>(l)].data();
    if (opt.scan == ScanMode::Chunked) ssd_chunked(a, Q);
    else ssd_recurrent(a);

    // y += D x; y = rmsnorm_grouped(y * silu(z)) * w, groups of E/G channels.
    const int64_t gs = E / G;
#pragma omp parallel for schedule(static) if (T > 8)
    for (int64_t t = 0; t < T; ++t) {
      double* yr = y.data() + t * E;
      for (int64_t i = 0; i < E; ++i) {
        yr[i] += double(lw.D[i / P]) * xbc[t * CD + i];
        yr[i] *= silu(zx[t * Din + i]);
      }
      for (int64_t g = 0; g < G; ++g) {
        double ss = 0.0;
        for (int64_t i = g * gs; i < (g + 1) * gs; ++i) ss += yr[i] * yr[i];
        const double r = 1.0 / std::sqrt(ss / double(gs) + c.norm_eps);
        for (int64_t i = g * gs; i < (g + 1) * gs; ++i) yr[i] = yr[i] * r * double(lw.gnorm[i]);
      }
    }
    linear_f64(y.data(), T, E, lw.out_proj.data(), D, lw.out_proj_bias.empty() ? nullptr : lw.out_proj_bias.data(), h.data());
    for (int64_t i = 0; i < T * D; ++i) resid[i] += h[i];
    if (opt.residual) opt.residual(l, m_state.n_tokens, T, resid.data());
  }
  m_state.n_tokens += T;
  if (logits) {
    const int64_t first = opt.all_logits ? 0 : T - 1;
    logits_of(resid.data() + first * D, T - first, logits);
  }
}

}  // namespace mamba
