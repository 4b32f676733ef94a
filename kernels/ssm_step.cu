#include "engine/error.h"
#include "kernels/dtype.cuh"
#include "kernels/launch.cuh"
#include "kernels/ssm_step.cuh"

namespace mamba {

namespace {
constexpr int kWarps = 4, kThreads = kWarps * 32, kRowsPerWarp = 2, kRows = kWarps * kRowsPerWarp;
static_assert(kRows == kSsmStepRows);

// The probe instance's outputs: the block's part of its head's sums of squares (lane 0 of each warp holds its
// rows'), dt, and in block (0, 0) the residual's sum of squares.
__device__ __forceinline__ void write_probes(const SsmStepParams& p, float probe_s, float probe_y, float dt) {
  __shared__ float part[2][kWarps];
  __shared__ float scratch[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const DecodeProbeLayout& lay = p.probe_layout;
  if (lane == 0) {
    part[0][warp] = probe_s;
    part[1][warp] = probe_y;
  }
  __syncthreads();
  const int64_t h = blockIdx.y;
  if (threadIdx.x == 0) {
    float s = 0.f, y = 0.f;
    for (int w = 0; w < kWarps; ++w) s += part[0][w], y += part[1][w];
    p.probe[lay.state(h, blockIdx.x)] = s;
    p.probe[lay.y(h, blockIdx.x)] = y;
    if (blockIdx.x == 0) p.probe[lay.dt() + h] = dt;
  }
  if (blockIdx.x == 0 && blockIdx.y == 0) {
    float ss = 0.f;
    for (int64_t i = threadIdx.x; i < p.probe_D; i += kThreads) ss += p.probe_resid[i] * p.probe_resid[i];
    ss = block_sum(ss, scratch);
    if (threadIdx.x == 0) p.probe[lay.resid()] = ss;
  }
}

// PROBE: the probe-writing instance (SsmStepParams::probe).
template <int NJ, int K, bool PROBE>
__global__ void __launch_bounds__(kThreads) ssm_step_kernel(SsmStepParams p) {
  constexpr int kChPerThread = (2 * 32 * NJ + kRows + kThreads - 1) / kThreads;
  constexpr int kWin = K > 1 ? K - 1 : 1;
  extern __shared__ float sm[];
  __shared__ float s_dt;
  const int64_t N = p.N;
  float* sB = sm;
  float* sC = sm + N;
  float* sx = sm + 2 * N;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t h = blockIdx.y, p0 = int64_t(blockIdx.x) * kRows;
  const int64_t hpg = p.H / p.G, g = h / hpg;
  const int64_t n_rows = imin(kRows, p.P - p0), n_ch = 2 * N + n_rows;

  // Everything but this token's projection is ready before the previous kernel ends (under PDL this
  // overlaps it): the state rows, the conv weights and the conv window (written by the last step).
  lab_trace_start(p.lab);
  float s[kRowsPerWarp][NJ];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t pr = p0 + warp * kRowsPerWarp + r;
#pragma unroll
    for (int j = 0; j < NJ; ++j) s[r][j] = (pr < p.P && lane + 32 * j < N) ? p.state[(h * p.P + pr) * N + lane + 32 * j] : 0.f;
  }
  const int64_t pos = p.step_io[1];
  int64_t ch[kChPerThread];
  float w[kChPerThread][K], win[kChPerThread][kWin], bias[kChPerThread];
#pragma unroll
  for (int u = 0; u < kChPerThread; ++u) {
    const int64_t i = threadIdx.x + int64_t(u) * kThreads;
    ch[u] = i < N ? p.E + g * N + i : i < 2 * N ? p.E + p.G * N + g * N + (i - N) : h * p.P + p0 + (i - 2 * N);
    if (i < n_ch) {
#pragma unroll
      for (int k = 0; k < K; ++k) w[u][k] = p.conv_w[ch[u] * K + k];
#pragma unroll
      for (int k = 0; k + 1 < K; ++k) win[u][k] = p.ring[ch[u] * K + (pos + 1 + k) % K];  // oldest first
      bias[u] = p.conv_b ? p.conv_b[ch[u]] : 0.f;
    }
  }
  const float A = p.A[h], Dh = p.D[h], dt_bias = p.dt_bias[h];
  prefetch_l2_share(p.prefetch_next, p.prefetch_next_bytes);
  if (p.trigger_at_start) pdl_launch_dependents();
  pdl_wait();
  if (!p.trigger_at_start) pdl_launch_dependents();
  lab_trace_waited(p.lab);

  // Every input of this token is loaded before anything is stored (the ring and state stores could
  // alias them as far as the compiler knows): one round trip after the wait, not one per channel.
  const float* xbc = p.zx + p.E;
  const bool own_bc = (h % hpg == 0) && blockIdx.x == 0;  // one block stores each B/C input
  float in[kChPerThread], zg[kRowsPerWarp];
#pragma unroll
  for (int u = 0; u < kChPerThread; ++u) {
    const int64_t i = threadIdx.x + int64_t(u) * kThreads;
    in[u] = i < n_ch ? xbc[ch[u]] : 0.f;
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t pr = p0 + warp * kRowsPerWarp + r;
    zg[r] = p.gate && pr < p.P ? p.zx[h * p.P + pr] : 0.f;
  }
  const float dt_raw = threadIdx.x == 0 ? xbc[p.conv_dim + h] : 0.f;
#pragma unroll
  for (int u = 0; u < kChPerThread; ++u) {
    const int64_t i = threadIdx.x + int64_t(u) * kThreads;
    if (i < n_ch) {
      float acc = bias[u] + w[u][K - 1] * in[u];
#pragma unroll
      for (int k = 0; k + 1 < K; ++k) acc += w[u][k] * win[u][k];
      sm[i] = silu_f(acc);  // sB, sC and sx are consecutive
      if (i >= 2 * N || own_bc) p.ring[ch[u] * K + pos] = in[u];
    }
  }
  if (threadIdx.x == 0) s_dt = softplus_clamp(dt_raw + dt_bias, p.dt_lo, p.dt_hi);
  __syncthreads();
  lab_trace_mark(p.lab, 4);

  const float dt = s_dt, decay = expf(dt * A);
  float probe_s = 0.f, probe_y = 0.f;  // PROBE, lane 0: this warp's rows' sums of squares
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t pr = p0 + warp * kRowsPerWarp + r;
    if (pr < p.P) {  // no early exit: keeps the loop unrolled and s[][] in registers
      const float x = sx[pr - p0], dx = dt * x;
      float acc = 0.f, sq = 0.f;
#pragma unroll
      for (int j = 0; j < NJ; ++j) {
        const int64_t n = lane + 32 * j;
        if (n < N) {
          // explicit fused multiply-adds: every instance (with or without probes) rounds the same way
          s[r][j] = __fmaf_rn(decay, s[r][j], dx * sB[n]);
          acc = __fmaf_rn(s[r][j], sC[n], acc);
          if constexpr (PROBE) sq += s[r][j] * s[r][j];
          if (!lab_skip(p.lab, kSsmSkipStore)) p.state[(h * p.P + pr) * N + n] = s[r][j];
        }
      }
      acc = warp_sum(acc);
      if constexpr (PROBE) sq = warp_sum(sq);
      if (lane == 0) {
        float out = __fmaf_rn(Dh, x, acc);
        if constexpr (PROBE) {
          probe_s += sq;
          probe_y += out * out;
        }
        if (p.gate) out *= silu_f(zg[r]);
        p.y[h * p.P + pr] = out;
      }
    }
  }
  if constexpr (PROBE) write_probes(p, probe_s, probe_y, dt);
  lab_trace_end(p.lab);
}

template <int NJ, int K>
void launch_k(const SsmStepParams& p, dim3 grid, size_t smem, cudaStream_t s, bool pdl) {
  if (p.probe) launch_kernel(ssm_step_kernel<NJ, K, true>, grid, dim3(kThreads), smem, s, pdl, "ssm_step_kernel (probes)", p);
  else launch_kernel(ssm_step_kernel<NJ, K, false>, grid, dim3(kThreads), smem, s, pdl, "ssm_step_kernel", p);
}

template <int NJ>
void launch_nj(const SsmStepParams& p, dim3 grid, size_t smem, cudaStream_t s, bool pdl) {
  switch (p.K) {
    case 1: return launch_k<NJ, 1>(p, grid, smem, s, pdl);
    case 2: return launch_k<NJ, 2>(p, grid, smem, s, pdl);
    case 3: return launch_k<NJ, 3>(p, grid, smem, s, pdl);
    case 4: return launch_k<NJ, 4>(p, grid, smem, s, pdl);
    default: throw Error("CUDA backend: conv kernel " + std::to_string(p.K) + " > 4 is not supported in decode");
  }
}
}  // namespace

void launch_ssm_step(const SsmStepParams& p, cudaStream_t s, bool pdl) {
  const dim3 grid(ceil_div(p.P, kRows), static_cast<unsigned>(p.H));
  const size_t smem = sizeof(float) * size_t(2 * p.N + kRows);
  if (p.N <= 32) launch_nj<1>(p, grid, smem, s, pdl);
  else if (p.N <= 64) launch_nj<2>(p, grid, smem, s, pdl);
  else if (p.N <= 128) launch_nj<4>(p, grid, smem, s, pdl);
  else if (p.N <= 256) launch_nj<8>(p, grid, smem, s, pdl);
  else throw Error("CUDA backend: d_state " + std::to_string(p.N) + " > 256 is not supported");
}

}  // namespace mamba
