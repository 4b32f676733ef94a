#include "engine/error.h"
#include "kernels/launch.cuh"
#include "kernels/ssd_recurrent.cuh"

namespace mamba {

namespace {
constexpr int kWarps = 4;

template <int NJ>
__global__ void __launch_bounds__(kWarps * 32) ssd_recurrent_kernel(SsdRecurrentParams p) {
  pdl_wait();
  const int lane = threadIdx.x & 31;
  const int64_t h = blockIdx.y, pr = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (pr >= p.P) return;
  const int64_t g = h / (p.H / p.G), N = p.N;
  float* S = p.state + (h * p.P + pr) * N;
  float s[NJ];
#pragma unroll
  for (int j = 0; j < NJ; ++j) s[j] = (lane + 32 * j < N) ? S[lane + 32 * j] : 0.f;
  const float A = p.A[h];
  for (int64_t t = 0; t < p.T; ++t) {
    const float dt = p.dt[h * p.dt_stride + t];
    const float decay = expf(dt * A);
    const float dx = dt * p.x[t * p.ldx + h * p.P + pr];
    const float* Bt = p.B + t * p.ldx + g * N;
    const float* Ct = p.C + t * p.ldx + g * N;
    float acc = 0.f;
#pragma unroll
    for (int j = 0; j < NJ; ++j) {
      const int64_t n = lane + 32 * j;
      if (n < N) {
        s[j] = decay * s[j] + dx * Bt[n];
        acc += s[j] * Ct[n];
      }
    }
    acc = warp_sum(acc);
    if (lane == 0) p.y[t * p.ldy + h * p.P + pr] = acc;
  }
#pragma unroll
  for (int j = 0; j < NJ; ++j)
    if (lane + 32 * j < N) S[lane + 32 * j] = s[j];
}
}  // namespace

void launch_ssd_recurrent(const SsdRecurrentParams& p, cudaStream_t s) {
  if (p.T <= 0) return;
  const dim3 grid(ceil_div(p.P, kWarps), static_cast<unsigned>(p.H)), block(kWarps * 32);
  const char* what = "ssd_recurrent_kernel";
  if (p.N <= 32) launch_kernel(ssd_recurrent_kernel<1>, grid, block, 0, s, false, what, p);
  else if (p.N <= 64) launch_kernel(ssd_recurrent_kernel<2>, grid, block, 0, s, false, what, p);
  else if (p.N <= 128) launch_kernel(ssd_recurrent_kernel<4>, grid, block, 0, s, false, what, p);
  else if (p.N <= 256) launch_kernel(ssd_recurrent_kernel<8>, grid, block, 0, s, false, what, p);
  else throw Error("CUDA backend: d_state " + std::to_string(p.N) + " > 256 is not supported");
}

}  // namespace mamba
