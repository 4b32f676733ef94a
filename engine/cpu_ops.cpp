#include "engine/cpu_ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/simd.h"

namespace mamba::cpu {

void rmsnorm(const float* x, const float* w, float* out, int64_t T, int64_t D, double eps) {
#pragma omp parallel for schedule(static) if (T > 8)
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = x + t * D;
    float* o = out + t * D;
    double ss = 0.0;
    for (int64_t i = 0; i < D; ++i) ss += double(xr[i]) * xr[i];
    const float r = static_cast<float>(1.0 / std::sqrt(ss / double(D) + eps));
#pragma omp simd
    for (int64_t i = 0; i < D; ++i) o[i] = xr[i] * r * w[i];
  }
}

namespace {

// Rows t0..t1 of the conv; `rows[k]` returns the input row at time offset k - (K-1) relative to t.
MAMBA_HOT void conv_rows(const float* in, int64_t ld_in, const float* hist, int64_t t0, int64_t t1, int64_t C, int64_t K, const float* wt,
                         const float* b, float* out) {
  const int64_t W = K - 1;
  for (int64_t t = t0; t < t1; ++t) {
    float* o = out + t * C;
    if (b) std::memcpy(o, b, sizeof(float) * C);
    else std::memset(o, 0, sizeof(float) * C);
    for (int64_t k = 0; k < K; ++k) {
      const int64_t r = t + k - W;  // input time index; negative reads the carried window
      const float* src = r < 0 ? hist + (W + r) * C : in + r * ld_in;
      const float* wk = wt + k * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] += wk[c] * src[c];
    }
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = silu(o[c]);
  }
}

// out[r] = W[r,:] . x for rows [r0, r1): four rows at a time so four independent FMA chains hide the latency
// and the loop runs at load bandwidth (decode is a stream over the weights).
MAMBA_HOT void gemv_rows(const float* W, const float* x, float* out, int64_t r0, int64_t r1, int64_t K) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    const float *w0 = W + r * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
    for (int64_t k = 0; k < K; ++k) {
      a0 += w0[k] * x[k];
      a1 += w1[k] * x[k];
      a2 += w2[k] * x[k];
      a3 += w3[k] * x[k];
    }
    out[r] = a0;
    out[r + 1] = a1;
    out[r + 2] = a2;
    out[r + 3] = a3;
  }
  for (; r < r1; ++r) {
    const float* w0 = W + r * K;
    float a0 = 0;
#pragma omp simd reduction(+ : a0)
    for (int64_t k = 0; k < K; ++k) a0 += w0[k] * x[k];
    out[r] = a0;
  }
}

}  // namespace

void causal_conv1d_silu(const float* in, int64_t ld_in, int64_t T, int64_t C, int64_t K, const float* w, const float* b, float* state,
                        float* out) {
  const int64_t W = K - 1;
  // Time-major copies of the weights and the carried window, so the inner loop runs over contiguous channels.
  std::vector<float> wt(static_cast<size_t>(K * C)), hist(static_cast<size_t>(W * C));
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t k = 0; k < K; ++k) wt[k * C + c] = w[c * K + k];
    for (int64_t k = 0; k < W; ++k) hist[k * C + c] = state[c * W + k];
  }
  const int64_t block = 16;
#pragma omp parallel for schedule(static) if (T > block)
  for (int64_t t0 = 0; t0 < T; t0 += block) conv_rows(in, ld_in, hist.data(), t0, std::min(T, t0 + block), C, K, wt.data(), b, out);
  // New window: the last K-1 inputs of [old window, in] (old entries survive when T < K-1).
  for (int64_t c = 0; c < C; ++c)
    for (int64_t k = 0; k < W; ++k) {
      const int64_t r = T - W + k;
      state[c * W + k] = r < 0 ? hist[(W + r) * C + c] : in[r * ld_in + c];
    }
}

void dt_softplus(const float* raw, int64_t ld_raw, int64_t T, int64_t H, const float* bias, double lo, double hi, float* dt) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const float v = raw[t * ld_raw + h] + bias[h];
      float s = v > 20.f ? v : std::log1p(std::exp(v));  // torch's softplus threshold
      if (s < lo) s = static_cast<float>(lo);
      if (s > hi) s = static_cast<float>(hi);
      dt[t * H + h] = s;
    }
}

void add_skip(const float* x, int64_t ldx, const float* D, float* y, int64_t T, int64_t H, int64_t P) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const float d = D[h];
      const float* xs = x + t * ldx + h * P;
      float* ys = y + t * H * P + h * P;
#pragma omp simd
      for (int64_t p = 0; p < P; ++p) ys[p] += d * xs[p];
    }
}

void gated_rmsnorm(float* y, const float* z, int64_t ldz, const float* w, int64_t T, int64_t E, int64_t G, double eps) {
  const int64_t gs = E / G;
#pragma omp parallel for schedule(static) if (T > 8)
  for (int64_t t = 0; t < T; ++t) {
    float* yr = y + t * E;
    const float* zr = z + t * ldz;
    for (int64_t i = 0; i < E; ++i) yr[i] *= silu(zr[i]);
    for (int64_t g = 0; g < G; ++g) {
      float* yg = yr + g * gs;
      double ss = 0.0;
      for (int64_t i = 0; i < gs; ++i) ss += double(yg[i]) * yg[i];
      const float r = static_cast<float>(1.0 / std::sqrt(ss / double(gs) + eps));
      const float* wg = w + g * gs;
#pragma omp simd
      for (int64_t i = 0; i < gs; ++i) yg[i] = yg[i] * r * wg[i];
    }
  }
}

void linear(const float* x, int64_t T, int64_t K, const float* W, int64_t N, const float* bias, float* out) {
  if (T == 1) {
    const int64_t block = 64;
    // Matrices under 1 MiB (Mamba-1's x_proj and dt_proj) take less time than waking the threads.
#pragma omp parallel for schedule(static) if (N * K >= (int64_t(1) << 18))
    for (int64_t r0 = 0; r0 < N; r0 += block) gemv_rows(W, x, out, r0, std::min(N, r0 + block), K);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T), static_cast<int>(N), static_cast<int>(K), 1.f, x,
                static_cast<int>(K), W, static_cast<int>(K), 0.f, out, static_cast<int>(N));
  }
  if (bias)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < N; ++n) out[t * N + n] += bias[n];
}

void group_norms(const float* x, int64_t ldx, int64_t T, int64_t groups, int64_t len, float* out) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t g = 0; g < groups; ++g) {
      const float* v = x + t * ldx + g * len;
      double s = 0.0;
      for (int64_t i = 0; i < len; ++i) s += double(v[i]) * v[i];
      out[t * groups + g] = static_cast<float>(std::sqrt(s));
    }
}

}  // namespace mamba::cpu
