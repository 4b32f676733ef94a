#pragma once
// The per-layer operations on the CPU, one function each. They are the reference every CUDA op is
// tested against, so each is a plain function over pointers with explicit leading dimensions.
#include <cstdint>

namespace mamba::cpu {

// out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w        x, out: (T, D)
void rmsnorm(const float* x, const float* w, float* out, int64_t T, int64_t D, double eps);

// Depthwise causal conv over time, left-padded with conv_state, then SiLU.
// in: (T, C) with row stride ld_in; w: (C, K); b: (C) or null; state: (C, K-1) in/out (oldest first);
// out: (T, C) dense.
void causal_conv1d_silu(const float* in, int64_t ld_in, int64_t T, int64_t C, int64_t K, const float* w, const float* b, float* state,
                        float* out);

// dt[t,h] = clamp(softplus(raw[t,h] + bias[h]), lo, hi)   raw: row stride ld_raw; dt: (T, H) dense.
void dt_softplus(const float* raw, int64_t ld_raw, int64_t T, int64_t H, const float* bias, double lo, double hi, float* dt);

// y[t, h, :] += D[h] * x[t, h, :]     x: row stride ldx; y: (T, H*P) dense.
void add_skip(const float* x, int64_t ldx, const float* D, float* y, int64_t T, int64_t H, int64_t P);

// y = rmsnorm_grouped(y * silu(z)) * w, each group of E/G channels normalised on its own.
// y: (T, E) in/out; z: row stride ldz.
void gated_rmsnorm(float* y, const float* z, int64_t ldz, const float* w, int64_t T, int64_t E, int64_t G, double eps);

// out (T, N) = x (T, K) @ W^T (W: (N, K)) [+ bias]; through BLAS (GEMV for T = 1).
void linear(const float* x, int64_t T, int64_t K, const float* W, int64_t N, const float* bias, float* out);

// out[t * groups + g] = || x[t, g*len .. (g+1)*len) ||_2   x: row stride ldx; accumulated in double.
void group_norms(const float* x, int64_t ldx, int64_t T, int64_t groups, int64_t len, float* out);

inline float silu(float v) { return v / (1.f + __builtin_expf(-v)); }

}  // namespace mamba::cpu
