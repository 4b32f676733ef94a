#include "kernels/dt_cumsum.cuh"
#include "kernels/dtype.cuh"
#include "kernels/launch.cuh"

namespace mamba {

namespace {

constexpr int kThreads = 256;

// One block per (chunk, head); the chunk is walked in tiles of kThreads with a running carry.
__global__ void __launch_bounds__(kThreads) dt_cumsum_kernel(DtCumsumParams p) {
  __shared__ float warp_tot[kThreads / 32];
  __shared__ float carry_s;
  pdl_wait();
  const int64_t h = blockIdx.y, c = blockIdx.x;
  const int64_t t0 = c * p.Q, t_end = min(t0 + p.Q, p.T_pad);
  const float A = p.A[h], bias = p.bias[h];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float carry = 0.f;
  for (int64_t base = t0; base < t_end; base += kThreads) {
    const int64_t t = base + threadIdx.x;
    float dt = 0.f;
    if (t < t_end && t < p.T) dt = softplus_clamp(p.raw[t * p.ld_raw + h] + bias, p.lo, p.hi);
    if (t < t_end) p.dt[h * p.T_pad + t] = dt;
    if (!p.cs) continue;
    float v = dt * A;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const float n = __shfl_up_sync(0xffffffffu, v, o);
      if (lane >= o) v += n;
    }
    if (lane == 31) warp_tot[warp] = v;
    __syncthreads();
    float before = carry;
    for (int w = 0; w < warp; ++w) before += warp_tot[w];
    if (t < t_end) p.cs[h * p.T_pad + t] = before + v;
    if (threadIdx.x == kThreads - 1) carry_s = before + v;
    __syncthreads();
    carry = carry_s;
    __syncthreads();
  }
}

}  // namespace

void launch_dt_cumsum(const DtCumsumParams& p, cudaStream_t s) {
  if (p.T_pad <= 0) return;
  const int64_t Q = p.cs ? p.Q : p.T_pad;
  DtCumsumParams q = p;
  q.Q = Q;
  const dim3 grid(ceil_div(p.T_pad, Q), static_cast<unsigned>(p.H));
  launch_kernel(dt_cumsum_kernel, grid, dim3(kThreads), 0, s, false, "dt_cumsum_kernel", q);
}

}  // namespace mamba
