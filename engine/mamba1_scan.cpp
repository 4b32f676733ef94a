#include "engine/mamba1_scan.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/error.h"
#include "engine/simd.h"

namespace mamba {

namespace {

// exp(x) for the decay factors (x <= 0 in practice), within 2 ulp of expf, in a form the compiler
// vectorises: one exp per channel and state entry per token is the scan's main cost.
inline float vexp(float x) {
  x = std::min(88.3f, std::max(-87.3f, x));
  const float shift = 12582912.f;  // 1.5 * 2^23: adding it rounds to the nearest integer
  const float t = x * 1.44269504088896341f + shift;
  const float k = t - shift;
  const float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

void check(const SelectiveScanArgs& a) {
  if (a.T < 0 || a.E <= 0 || a.N <= 0 || !a.x || !a.dt || !a.B || !a.C || !a.A || !a.y || !a.state)
    throw Error("selective scan: invalid arguments");
  if (a.state_norm && (a.groups <= 0 || a.E % a.groups != 0)) throw Error("selective scan: probe groups must divide the channels");
}

// Channels [c0, c1) through positions [t0, t1) from the state in `h` ((c1-c0), N), in place.
// kOut: write y (= sum_n h C + D x); kSq: write sum_n h^2 per channel to sq (T, E).
template <bool kOut, bool kSq>
MAMBA_HOT void scan_block(const SelectiveScanArgs& a, int64_t c0, int64_t c1, int64_t t0, int64_t t1, float* h, float* sq) {
  const int64_t N = a.N, E = a.E;
  for (int64_t t = t0; t < t1; ++t) {
    const float* B = a.B + t * a.ldbc;
    const float* C = a.C + t * a.ldbc;
    for (int64_t c = c0; c < c1; ++c) {
      const float dt = a.dt[t * E + c], xv = a.x[t * a.ldx + c], dx = dt * xv;
      const float* A = a.A + c * N;
      float* hc = h + (c - c0) * N;
      float acc = 0.f, s2 = 0.f;
#pragma omp simd reduction(+ : acc, s2)
      for (int64_t n = 0; n < N; ++n) {
        const float v = vexp(dt * A[n]) * hc[n] + dx * B[n];
        hc[n] = v;
        acc += v * C[n];
        s2 += v * v;
      }
      if constexpr (kOut) a.y[t * E + c] = acc + (a.D ? a.D[c] * xv : 0.f);
      if constexpr (kSq) sq[t * E + c] = s2;
    }
  }
}

// Channel blocks small enough that a block's state stays in L1 and there are enough of them for the threads.
int64_t channel_block(const SelectiveScanArgs& a) { return std::max<int64_t>(1, std::min<int64_t>(64, 2048 / a.N)); }

void group_norms_from_sq(const SelectiveScanArgs& a, const std::vector<float>& sq) {
  const int64_t gs = a.E / a.groups;
  for (int64_t t = 0; t < a.T; ++t)
    for (int64_t g = 0; g < a.groups; ++g) {
      double s = 0.0;
      for (int64_t c = g * gs; c < (g + 1) * gs; ++c) s += sq[t * a.E + c];
      a.state_norm[t * a.groups + g] = static_cast<float>(std::sqrt(s));
    }
}

}  // namespace

void selective_scan_recurrent(const SelectiveScanArgs& a) {
  check(a);
  if (a.T == 0) return;
  const int64_t cb = channel_block(a), n_blocks = (a.E + cb - 1) / cb;
  std::vector<float> sq(a.state_norm ? static_cast<size_t>(a.T * a.E) : 0);
#pragma omp parallel for schedule(static) if (n_blocks > 1 && a.T * a.E * a.N > 32768)
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t c0 = b * cb, c1 = std::min(a.E, c0 + cb);
    float* h = a.state + c0 * a.N;
    if (a.state_norm) scan_block<true, true>(a, c0, c1, 0, a.T, h, sq.data());
    else scan_block<true, false>(a, c0, c1, 0, a.T, h, nullptr);
  }
  if (a.state_norm) group_norms_from_sq(a, sq);
}

void selective_scan_chunked(const SelectiveScanArgs& a, int64_t Q) {
  check(a);
  if (Q < 1) throw Error("selective scan: chunk size must be >= 1");
  const int64_t T = a.T, E = a.E, N = a.N;
  if (T == 0) return;
  const int64_t n_chunks = (T + Q - 1) / Q;
  if (n_chunks == 1) return selective_scan_recurrent(a);
  const int64_t cb = channel_block(a), n_blocks = (E + cb - 1) / cb;

  // 1. every chunk from a zero state: local outputs into y, end states S_k, running sums of dt.
  std::vector<float> S(static_cast<size_t>(n_chunks * E * N), 0.f);  // (n_chunks, E, N)
  std::vector<float> cum(static_cast<size_t>(T * E));                // (T, E) dt summed inside the chunk
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t k = 0; k < n_chunks; ++k)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t t0 = k * Q, t1 = std::min(T, t0 + Q), c0 = b * cb, c1 = std::min(E, c0 + cb);
      scan_block<true, false>(a, c0, c1, t0, t1, S.data() + (k * E + c0) * N, nullptr);
      for (int64_t c = c0; c < c1; ++c) {
        float run = 0.f;
        for (int64_t t = t0; t < t1; ++t) cum[t * E + c] = (run += a.dt[t * E + c]);
      }
    }

    // 2. state passing: S[k] becomes h_in(k); a.state ends as the final state.
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t c0 = b * cb, c1 = std::min(E, c0 + cb);
    for (int64_t k = 0; k < n_chunks; ++k) {
      const int64_t t_end = std::min(T, (k + 1) * Q) - 1;
      for (int64_t c = c0; c < c1; ++c) {
        const float dsum = cum[t_end * E + c];
        float* h = a.state + c * N;
        float* s = S.data() + (k * E + c) * N;
        for (int64_t n = 0; n < N; ++n) {
          const float h_in = h[n];
          h[n] = vexp(a.A[c * N + n] * dsum) * h_in + s[n];
          s[n] = h_in;
        }
      }
    }
  }

  // 3. the entry state's contribution to every position of its chunk.
  std::vector<float> sq(a.state_norm ? static_cast<size_t>(T * E) : 0);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t k = 0; k < n_chunks; ++k)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t t0 = k * Q, t1 = std::min(T, t0 + Q), c0 = b * cb, c1 = std::min(E, c0 + cb);
      const float* h_in = S.data() + k * E * N;
      for (int64_t t = t0; t < t1; ++t) {
        const float* C = a.C + t * a.ldbc;
        for (int64_t c = c0; c < c1; ++c) {
          const float dsum = cum[t * E + c];
          const float* A = a.A + c * N;
          const float* hc = h_in + c * N;
          float acc = 0.f;
#pragma omp simd reduction(+ : acc)
          for (int64_t n = 0; n < N; ++n) acc += C[n] * vexp(A[n] * dsum) * hc[n];
          a.y[t * E + c] += acc;
        }
      }
      if (a.state_norm) {
        // The probe needs the state after every token: run the chunk again from its entry state.
        std::vector<float> h(h_in + c0 * N, h_in + c1 * N);
        scan_block<false, true>(a, c0, c1, t0, t1, h.data(), sq.data());
      }
    }
  if (a.state_norm) group_norms_from_sq(a, sq);
}

std::vector<double> mamba1_hidden_attention(const SelectiveScanArgs& a, int64_t c) {
  if (a.T < 0 || a.E <= 0 || a.N <= 0 || !a.dt || !a.B || !a.C || !a.A) throw Error("hidden attention: invalid arguments");
  if (c < 0 || c >= a.E) throw Error("hidden attention: channel " + std::to_string(c) + " is outside 0.." + std::to_string(a.E - 1));
  const int64_t T = a.T, N = a.N, E = a.E;
  std::vector<double> cum(static_cast<size_t>(T + 1), 0.0);  // cum[t+1] = sum of dt[0..t]
  for (int64_t t = 0; t < T; ++t) cum[t + 1] = cum[t] + double(a.dt[t * E + c]);
  std::vector<double> M(static_cast<size_t>(T * T), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s <= t; ++s) {
      const double seg = cum[t + 1] - cum[s + 1];
      double v = 0.0;
      for (int64_t n = 0; n < N; ++n)
        v += double(a.C[t * a.ldbc + n]) * std::exp(double(a.A[c * N + n]) * seg) * double(a.B[s * a.ldbc + n]);
      M[t * T + s] = v * double(a.dt[s * E + c]);
    }
  return M;
}

}  // namespace mamba
