#include "engine/ssd.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <cblas.h>

#include "engine/error.h"
#include "engine/simd.h"

namespace mamba {

namespace {

inline float dot(const float* a, const float* b, int64_t n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void check_args(const SsdArgs& a) {
  if (a.T < 0 || a.H <= 0 || a.P <= 0 || a.G <= 0 || a.N <= 0 || a.H % a.G != 0) throw Error("ssd: invalid sizes");
}

// One head through positions [t0, t0 + len) of the recurrence; S (P, N) in place. kY: write y;
// kNorm: write ||S_t||_F to a.state_norm after each token.
template <bool kY, bool kNorm>
MAMBA_HOT void recurrent_head(const SsdArgs& a, int64_t h, int64_t t0, int64_t len, float* S) {
  const int64_t P = a.P, N = a.N, g = h / (a.H / a.G);
  for (int64_t t = t0; t < t0 + len; ++t) {
    const float dt = a.dt[t * a.lddt + h];
    const float decay = std::exp(dt * a.A[h]);
    const float* x = a.x + t * a.ldx + h * P;
    const float* B = a.B + t * a.ldb + g * N;
    const float* C = a.C + t * a.ldc + g * N;
    double sq = 0.0;
    for (int64_t p = 0; p < P; ++p) {
      float* Sp = S + p * N;
      const float dx = dt * x[p];
      float acc = 0.f, row_sq = 0.f;
#pragma omp simd reduction(+ : acc, row_sq)
      for (int64_t n = 0; n < N; ++n) {
        Sp[n] = decay * Sp[n] + dx * B[n];
        if constexpr (kY) acc += Sp[n] * C[n];
        if constexpr (kNorm) row_sq += Sp[n] * Sp[n];
      }
      if constexpr (kY) a.y[t * a.ldy + h * P + p] = acc;
      if constexpr (kNorm) sq += row_sq;
    }
    if constexpr (kNorm) a.state_norm[t * a.H + h] = static_cast<float>(std::sqrt(sq));
  }
}

int bi(int64_t v) { return static_cast<int>(v); }

// Per-thread scratch of the chunked scan.
struct ChunkScratch {
  std::vector<float> W;       // (Q, Q)  (C_i.B_j) L[i,j] dt_j, lower triangle
  std::vector<float> cum;     // (T)     dt*A summed inside each chunk
  std::vector<float> rows;    // (Q, N)  B or C rows scaled per position; then (P, N) for the probe
  std::vector<float> states;  // (n_chunks, P, N)  S_c, then S_in(c)
};

// One head through the four steps of ssd_minimal; the matrix products go through BLAS
// (single-threaded inside the caller's OpenMP region).
MAMBA_HOT void chunked_head(const SsdArgs& a, int64_t h, int64_t Q, const float* CB, ChunkScratch& s) {
  const int64_t T = a.T, P = a.P, N = a.N, G = a.G, g = h / (a.H / a.G);
  const int64_t n_chunks = (T + Q - 1) / Q;
  const float A = a.A[h];
  for (int64_t c = 0; c < n_chunks; ++c) {
    float running = 0.f;
    for (int64_t t = c * Q; t < std::min(T, (c + 1) * Q); ++t) s.cum[t] = (running += a.dt[t * a.lddt + h] * A);
  }

  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t t0 = c * Q, len = std::min(Q, T - t0);
    const float* cb = CB + (c * G + g) * Q * Q;
    const float* cc = s.cum.data() + t0;
    const float* dt = a.dt + t0 * a.lddt + h;
    const float* x = a.x + t0 * a.ldx + h * P;
    float* W = s.W.data();
    // W[i,j] = cb[i,j] * L[i,j] * dt_j with L[i,j] = L[i-1,j] * exp(a_i): segment decays as products of
    // per-step decays, so only differences inside one chunk appear, never a long running sum.
    for (int64_t i = 0; i < len; ++i) {
      float* Wi = W + i * Q;
      if (i == 0) {
        Wi[0] = 1.f;
      } else {
        const float e = std::exp(cc[i] - cc[i - 1]);
        const float* Lprev = W + (i - 1) * Q;  // holds L (without cb, dt) until row i is done
#pragma omp simd
        for (int64_t j = 0; j < i; ++j) Wi[j] = Lprev[j] * e;
        Wi[i] = 1.f;
      }
      for (int64_t j = i + 1; j < len; ++j) Wi[j] = 0.f;
    }
    // The last row of L gives the decay to the chunk's end, needed by step 2.
    float* Bs = s.rows.data();
    const float* Llast = W + (len - 1) * Q;
    for (int64_t j = 0; j < len; ++j) {
      const float coef = Llast[j] * dt[j * a.lddt];
      const float* B = a.B + (t0 + j) * a.ldb + g * N;
#pragma omp simd
      for (int64_t n = 0; n < N; ++n) Bs[j * N + n] = coef * B[n];
    }
    for (int64_t i = 0; i < len; ++i) {
      float* Wi = W + i * Q;
      const float* cbi = cb + i * Q;
#pragma omp simd
      for (int64_t j = 0; j <= i; ++j) Wi[j] *= cbi[j] * dt[j * a.lddt];
    }

    // 1. diagonal blocks: Y = W X
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bi(len), bi(P), bi(len), 1.f, W, bi(Q), x, bi(a.ldx), 0.f,
                a.y + t0 * a.ldy + h * P, bi(a.ldy));
    // 2. chunk states: S_c = X^T diag(L[last,:] dt) B
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, bi(P), bi(N), bi(len), 1.f, x, bi(a.ldx), Bs, bi(N), 0.f,
                s.states.data() + c * P * N, bi(N));
  }

  // 3. state passing: S_in(c+1) = exp(sum of dt*A over chunk c) S_in(c) + S_c; S_in(0) = initial state.
  //    states[c] becomes S_in(c); the running state ends as the final state.
  float* S = a.state + h * P * N;
  for (int64_t c = 0; c < n_chunks; ++c) {
    const float chunk_decay = std::exp(s.cum[std::min(T, (c + 1) * Q) - 1]);
    float* Sc = s.states.data() + c * P * N;
#pragma omp simd
    for (int64_t k = 0; k < P * N; ++k) {
      const float s_in = S[k];
      S[k] = chunk_decay * s_in + Sc[k];
      Sc[k] = s_in;
    }
  }

  // Probe: the state after every token, from each chunk's entry state S_in(c).
  if (a.state_norm) {
    float* Sw = s.rows.data() + Q * N;
    for (int64_t c = 0; c < n_chunks; ++c) {
      std::copy_n(s.states.data() + c * P * N, P * N, Sw);
      recurrent_head<false, true>(a, h, c * Q, std::min(Q, T - c * Q), Sw);
    }
  }

  // 4. off-diagonal blocks: Y += diag(exp(cum)) C S_in(c)^T
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t t0 = c * Q, len = std::min(Q, T - t0);
    float* Cs = s.rows.data();
    for (int64_t i = 0; i < len; ++i) {
      const float decay_in = std::exp(s.cum[t0 + i]);
      const float* C = a.C + (t0 + i) * a.ldc + g * N;
#pragma omp simd
      for (int64_t n = 0; n < N; ++n) Cs[i * N + n] = decay_in * C[n];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bi(len), bi(P), bi(N), 1.f, Cs, bi(N), s.states.data() + c * P * N, bi(N), 1.f,
                a.y + t0 * a.ldy + h * P, bi(a.ldy));
  }
}

}  // namespace

void ssd_recurrent(const SsdArgs& a) {
  check_args(a);
#pragma omp parallel for schedule(static) if (a.H > 1)
  for (int64_t h = 0; h < a.H; ++h) {
    if (a.state_norm) recurrent_head<true, true>(a, h, 0, a.T, a.state + h * a.P * a.N);
    else recurrent_head<true, false>(a, h, 0, a.T, a.state + h * a.P * a.N);
  }
}

void ssd_chunked(const SsdArgs& a, int64_t Q) {
  check_args(a);
  if (Q < 1) throw Error("ssd: chunk size must be >= 1");
  const int64_t T = a.T, P = a.P, N = a.N, G = a.G;
  if (T == 0) return;
  Q = std::min(Q, T);  // one chunk covers it all; the scratch below is sized by Q
  const int64_t n_chunks = (T + Q - 1) / Q;

  // C_i . B_j inside each chunk, once per group (shared by its heads): (n_chunks, G, Q, Q).
  std::vector<float> CB(static_cast<size_t>(n_chunks * G * Q * Q));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t c = 0; c < n_chunks; ++c)
    for (int64_t g = 0; g < G; ++g) {
      const int64_t t0 = c * Q, len = std::min(Q, T - t0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bi(len), bi(len), bi(N), 1.f, a.C + t0 * a.ldc + g * N, bi(a.ldc),
                  a.B + t0 * a.ldb + g * N, bi(a.ldb), 0.f, CB.data() + (c * G + g) * Q * Q, bi(Q));
    }

#pragma omp parallel
  {
    ChunkScratch s;
    s.W.resize(static_cast<size_t>(Q * Q));
    s.cum.resize(static_cast<size_t>(T));
    s.rows.resize(static_cast<size_t>(Q * N + (a.state_norm ? a.P * N : 0)));
    s.states.resize(static_cast<size_t>(n_chunks * P * N));
#pragma omp for schedule(dynamic)
    for (int64_t h = 0; h < a.H; ++h) chunked_head(a, h, Q, CB.data(), s);
  }
}

std::vector<float> ssd_matrix(const SsdArgs& a, int64_t head) {
  check_args(a);
  if (head < 0 || head >= a.H) throw Error("ssd_matrix: head out of range");
  const int64_t T = a.T, N = a.N, g = head / (a.H / a.G);
  std::vector<double> cum(static_cast<size_t>(T + 1), 0.0);
  for (int64_t t = 0; t < T; ++t) cum[t + 1] = cum[t] + double(a.dt[t * a.lddt + head]) * a.A[head];
  std::vector<float> M(static_cast<size_t>(T * T), 0.f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s <= t; ++s) {
      const double cb = dot(a.C + t * a.ldc + g * N, a.B + s * a.ldb + g * N, N);
      M[t * T + s] = static_cast<float>(cb * std::exp(cum[t + 1] - cum[s + 1]) * a.dt[s * a.lddt + head]);
    }
  return M;
}

}  // namespace mamba
