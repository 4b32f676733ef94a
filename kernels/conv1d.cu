#include "conv1d.cuh"
#include "dtype.cuh"
#include "error.h"
#include "launch.cuh"

namespace mamba {

namespace {

constexpr int kTile = 8;  // time steps per thread: the window slides in registers

// grid (ceil(C / 128), ceil(T_pad / kTile)); thread = one channel over kTile consecutive steps.
template <typename TA, int K>
__global__ void __launch_bounds__(128) conv1d_silu_kernel(Conv1dParams p) {
  pdl_wait();
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= p.C) return;
  const int64_t t0 = int64_t(blockIdx.y) * kTile;
  float w[K], win[K];
#pragma unroll
  for (int k = 0; k < K; ++k) w[k] = p.w[c * K + k];
  const float bias = p.b ? p.b[c] : 0.f;
#pragma unroll
  for (int k = 0; k + 1 < K; ++k) {  // the K-1 inputs before t0, from the prompt or the ring
    const int64_t src = t0 - (K - 1) + k;
    win[k + 1] = src >= 0 ? (src < p.T ? p.in[src * p.ld_in + c] : 0.f) : p.ring[c * K + (((p.pos + src) % K + K) % K)];
  }
  const bool want_xs = p.xs && c < p.E;
  const int64_t h = want_xs ? c / p.P : 0;
  int64_t chunk_end = (t0 / p.Q + 1) * p.Q - 1;
#pragma unroll
  for (int j = 0; j < kTile; ++j) {
    const int64_t t = t0 + j;
    if (t >= p.T_pad) break;
#pragma unroll
    for (int k = 0; k + 1 < K; ++k) win[k] = win[k + 1];
    win[K - 1] = t < p.T ? p.in[t * p.ld_in + c] : 0.f;
    float v = 0.f;
    if (t < p.T) {
      float acc = bias;
#pragma unroll
      for (int k = 0; k < K; ++k) acc += w[k] * win[k];
      v = silu_f(acc);
    }
    p.out[t * p.C + c] = v;
    if (p.out_act) static_cast<TA*>(p.out_act)[t * p.C + c] = from_f32<TA>(v);
    if (want_xs) {
      while (t > chunk_end) chunk_end += p.Q;
      const float* csh = p.cs + h * p.T_pad;
      static_cast<TA*>(p.xs)[t * p.E + c] = from_f32<TA>(v * expf(csh[chunk_end] - csh[t]) * p.dt[h * p.T_pad + t]);
    }
  }
}

template <typename TA>
void launch_conv_typed(const Conv1dParams& p, cudaStream_t s) {
  const dim3 grid(ceil_div(p.C, 128), ceil_div(p.T_pad, kTile)), block(128);
  const char* what = "conv1d_silu_kernel";
  switch (p.K) {
    case 1: launch_kernel(conv1d_silu_kernel<TA, 1>, grid, block, 0, s, false, what, p); break;
    case 2: launch_kernel(conv1d_silu_kernel<TA, 2>, grid, block, 0, s, false, what, p); break;
    case 3: launch_kernel(conv1d_silu_kernel<TA, 3>, grid, block, 0, s, false, what, p); break;
    case 4: launch_kernel(conv1d_silu_kernel<TA, 4>, grid, block, 0, s, false, what, p); break;
    case 5: launch_kernel(conv1d_silu_kernel<TA, 5>, grid, block, 0, s, false, what, p); break;
    case 6: launch_kernel(conv1d_silu_kernel<TA, 6>, grid, block, 0, s, false, what, p); break;
    case 7: launch_kernel(conv1d_silu_kernel<TA, 7>, grid, block, 0, s, false, what, p); break;
    case 8: launch_kernel(conv1d_silu_kernel<TA, 8>, grid, block, 0, s, false, what, p); break;
    default: throw Error("CUDA backend: conv kernel " + std::to_string(p.K) + " > 8 is not supported");
  }
}

__global__ void conv_ring_update_kernel(ConvRingUpdateParams p) {
  pdl_wait();
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= p.C) return;
  const int64_t n = p.T < p.K - 1 ? p.T : p.K - 1;
  for (int64_t t = p.T - n; t < p.T; ++t) p.ring[c * p.K + (p.pos + t) % p.K] = p.in[t * p.ld_in + c];
}

}  // namespace

void launch_conv1d_silu(const Conv1dParams& p, cudaStream_t s) {
  if (p.T_pad <= 0) return;
  if (p.xs && (!p.dt || !p.cs || p.Q < 1 || p.P < 1)) throw Error("conv1d: xs needs dt, cs, Q and P");
  MAMBA_DTYPE_SWITCH(p.act_dtype, TA, launch_conv_typed<TA>(p, s));
}

void launch_conv_ring_update(const ConvRingUpdateParams& p, cudaStream_t s) {
  if (p.T <= 0 || p.K <= 1) return;
  launch_kernel(conv_ring_update_kernel, dim3(ceil_div(p.C, 256)), dim3(256), 0, s, false, "conv_ring_update_kernel", p);
}

}  // namespace mamba
