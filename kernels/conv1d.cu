#include "engine/error.h"
#include "kernels/conv1d.cuh"
#include "kernels/dtype.cuh"
#include "kernels/launch.cuh"

namespace mamba {

namespace {

// 16 time steps per thread (the K-1 window rows re-read per tile are 3/16 of the reads; with 8 steps they
// were 3/8) and V = 2 adjacent channels per thread where the layout allows (8-byte loads and stores).
constexpr int kTile = 16;

template <int V>
__device__ __forceinline__ void load_v(const float* src, float (&f)[V]) {
  if constexpr (V == 2) {
    const float2 t = *reinterpret_cast<const float2*>(src);
    f[0] = t.x;
    f[1] = t.y;
  } else {
    f[0] = *src;
  }
}

// grid (ceil(C / (128 V)), ceil(T_pad / kTile)); thread = channels c0..c0+V-1 over kTile consecutive steps.
template <typename TA, int K, int V>
__global__ void __launch_bounds__(128) conv1d_silu_kernel(Conv1dParams p) {
  pdl_wait();
  const int64_t c0 = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * V;
  if (c0 >= p.C) return;
  const int64_t t0 = int64_t(blockIdx.y) * kTile;
  float w[V][K], win[V][K], bias[V];
#pragma unroll
  for (int v = 0; v < V; ++v) {
#pragma unroll
    for (int k = 0; k < K; ++k) w[v][k] = p.w[(c0 + v) * K + k];
    bias[v] = p.b ? p.b[c0 + v] : 0.f;
  }
#pragma unroll
  for (int k = 0; k + 1 < K; ++k) {  // the K-1 inputs before t0, from the prompt or the ring
    const int64_t src = t0 - (K - 1) + k;
    float f[V];
    if (src >= 0) {
      if (src < p.T) load_v<V>(p.in + src * p.ld_in + c0, f);
      else
#pragma unroll
        for (int v = 0; v < V; ++v) f[v] = 0.f;
    } else {
      const int64_t slot = ((p.pos + src) % K + K) % K;
#pragma unroll
      for (int v = 0; v < V; ++v) f[v] = p.ring[(c0 + v) * K + slot];
    }
#pragma unroll
    for (int v = 0; v < V; ++v) win[v][k + 1] = f[v];
  }
  const bool want_xs = p.xs && c0 < p.E;  // V = 2 only with E and P even: both channels are x of one head
  const bool want_out = p.out_cols <= 0 || c0 < p.out_cols;
  const int64_t h = want_xs ? c0 / p.P : 0;
  const float* csh = want_xs ? p.cs + h * p.T_pad : nullptr;
  const float* dth = want_xs ? p.dt + h * p.T_pad : nullptr;
  // The tile's inputs and x scales are all loaded before the first store: the stores below could alias
  // them as far as the compiler knows, which otherwise serialised one memory round trip per step.
  float fin[kTile][V], scale[kTile];
  int64_t chunk_end = (t0 / p.Q + 1) * p.Q - 1;
#pragma unroll
  for (int j = 0; j < kTile; ++j) {
    const int64_t t = t0 + j;
    if (t < p.T) load_v<V>(p.in + t * p.ld_in + c0, fin[j]);
    else
#pragma unroll
      for (int v = 0; v < V; ++v) fin[j][v] = 0.f;
    scale[j] = 0.f;
    if (want_xs && t < p.T_pad) {
      while (t > chunk_end) chunk_end += p.Q;
      scale[j] = expf(csh[chunk_end] - csh[t]) * dth[t];
    }
  }
#pragma unroll
  for (int j = 0; j < kTile; ++j) {
    const int64_t t = t0 + j;
    if (t >= p.T_pad) break;
    const float* f = fin[j];
    float val[V];
#pragma unroll
    for (int v = 0; v < V; ++v) {
#pragma unroll
      for (int k = 0; k + 1 < K; ++k) win[v][k] = win[v][k + 1];
      win[v][K - 1] = f[v];
      val[v] = 0.f;
      if (t < p.T) {
        float acc = bias[v];
#pragma unroll
        for (int k = 0; k < K; ++k) acc += w[v][k] * win[v][k];
        val[v] = silu_f(acc);
      }
    }
    if constexpr (V == 2) {
      if (want_out) *reinterpret_cast<float2*>(p.out + t * p.C + c0) = make_float2(val[0], val[1]);
      if (p.out_act) store2<TA>(static_cast<TA*>(p.out_act) + t * p.C + c0, val[0], val[1]);
    } else {
      if (want_out) p.out[t * p.C + c0] = val[0];
      if (p.out_act) static_cast<TA*>(p.out_act)[t * p.C + c0] = from_f32<TA>(val[0]);
    }
    if (want_xs) {
      const float sc = scale[j];
      TA* xs = static_cast<TA*>(p.xs) + t * p.E + c0;
      if constexpr (V == 2) store2<TA>(xs, val[0] * sc, val[1] * sc);
      else xs[0] = from_f32<TA>(val[0] * sc);
    }
  }
}

template <typename TA, int V>
void launch_conv_channels(const Conv1dParams& p, cudaStream_t s) {
  const dim3 grid(ceil_div(p.C, 128 * V), ceil_div(p.T_pad, kTile)), block(128);
  const char* what = "conv1d_silu_kernel";
  switch (p.K) {
    case 1: launch_kernel(conv1d_silu_kernel<TA, 1, V>, grid, block, 0, s, false, what, p); break;
    case 2: launch_kernel(conv1d_silu_kernel<TA, 2, V>, grid, block, 0, s, false, what, p); break;
    case 3: launch_kernel(conv1d_silu_kernel<TA, 3, V>, grid, block, 0, s, false, what, p); break;
    case 4: launch_kernel(conv1d_silu_kernel<TA, 4, V>, grid, block, 0, s, false, what, p); break;
    case 5: launch_kernel(conv1d_silu_kernel<TA, 5, V>, grid, block, 0, s, false, what, p); break;
    case 6: launch_kernel(conv1d_silu_kernel<TA, 6, V>, grid, block, 0, s, false, what, p); break;
    case 7: launch_kernel(conv1d_silu_kernel<TA, 7, V>, grid, block, 0, s, false, what, p); break;
    case 8: launch_kernel(conv1d_silu_kernel<TA, 8, V>, grid, block, 0, s, false, what, p); break;
    default: throw Error("CUDA backend: conv kernel " + std::to_string(p.K) + " > 8 is not supported");
  }
}

bool aligned_to(const void* ptr, uintptr_t n) { return (reinterpret_cast<uintptr_t>(ptr) & (n - 1)) == 0; }

template <typename TA>
void launch_conv_typed(const Conv1dParams& p, cudaStream_t s) {
  const bool pairs = p.C % 2 == 0 && p.ld_in % 2 == 0 && aligned_to(p.in, 8) && aligned_to(p.out, 8) &&
                     (!p.out_act || aligned_to(p.out_act, 2 * sizeof(TA))) &&
                     (!p.xs || (p.E % 2 == 0 && p.P % 2 == 0 && aligned_to(p.xs, 2 * sizeof(TA))));
  if (pairs) launch_conv_channels<TA, 2>(p, s);
  else launch_conv_channels<TA, 1>(p, s);
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
