#include "engine/error.h"
#include "kernels/launch.cuh"
#include "kernels/ssd_recurrent.cuh"

namespace mamba {

namespace {
constexpr int kWarps = 4;

// PROBE: the instance that writes state_ss and may rescan chunks (SsdRecurrentParams).
template <int NJ, bool PROBE>
__global__ void __launch_bounds__(kWarps * 32) ssd_recurrent_kernel(SsdRecurrentParams p) {
  pdl_wait();
  const int lane = threadIdx.x & 31;
  const int64_t h = blockIdx.y, pr = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (pr >= p.P) return;
  const int64_t g = h / (p.H / p.G), N = p.N;
  const bool rescan = PROBE && p.s_in;
  const int64_t c = blockIdx.z, t0 = rescan ? c * p.Q : 0, t1 = rescan ? imin(p.T, t0 + p.Q) : p.T;
  const float* S_entry = rescan ? p.s_in + ((c * p.H + h) * p.P + pr) * N : p.state + (h * p.P + pr) * N;
  float s[NJ];
#pragma unroll
  for (int j = 0; j < NJ; ++j) s[j] = (lane + 32 * j < N) ? S_entry[lane + 32 * j] : 0.f;
  const float A = p.A[h];
  for (int64_t t = t0; t < t1; ++t) {
    const float dt = p.dt[h * p.dt_stride + t];
    const float decay = expf(dt * A);
    const float dx = dt * p.x[t * p.ldx + h * p.P + pr];
    const float* Bt = p.B + t * p.ldx + g * N;
    const float* Ct = p.C + t * p.ldx + g * N;
    float acc = 0.f, sq = 0.f;
#pragma unroll
    for (int j = 0; j < NJ; ++j) {
      const int64_t n = lane + 32 * j;
      if (n < N) {
        // explicit fused multiply-adds: both instances round alike (with the probe's extra use of s[j],
        // the compiler would otherwise be free to contract the two instances differently)
        s[j] = __fmaf_rn(decay, s[j], dx * Bt[n]);
        acc = __fmaf_rn(s[j], Ct[n], acc);
        if constexpr (PROBE) sq = __fmaf_rn(s[j], s[j], sq);
      }
    }
    acc = warp_sum(acc);
    if constexpr (PROBE) sq = warp_sum(sq);
    if (lane == 0) {
      p.y[t * p.ldy + h * p.P + pr] = acc;
      if constexpr (PROBE) p.state_ss[t * p.ldy + h * p.P + pr] = sq;
    }
  }
  if (rescan) return;
  float* S = p.state + (h * p.P + pr) * N;
#pragma unroll
  for (int j = 0; j < NJ; ++j)
    if (lane + 32 * j < N) S[lane + 32 * j] = s[j];
}

template <int NJ>
void launch_nj(const SsdRecurrentParams& p, cudaStream_t s) {
  const unsigned chunks = p.s_in ? ceil_div(p.T, p.Q) : 1;
  const dim3 grid(ceil_div(p.P, kWarps), static_cast<unsigned>(p.H), chunks), block(kWarps * 32);
  if (p.state_ss) launch_kernel(ssd_recurrent_kernel<NJ, true>, grid, block, 0, s, false, "ssd_recurrent_kernel (probes)", p);
  else launch_kernel(ssd_recurrent_kernel<NJ, false>, grid, block, 0, s, false, "ssd_recurrent_kernel", p);
}
}  // namespace

void launch_ssd_recurrent(const SsdRecurrentParams& p, cudaStream_t s) {
  if (p.T <= 0) return;
  if (p.s_in && (!p.state_ss || p.Q < 1)) throw Error("ssd_recurrent: a rescan needs the probe output and a chunk size");
  if (p.N <= 32) launch_nj<1>(p, s);
  else if (p.N <= 64) launch_nj<2>(p, s);
  else if (p.N <= 128) launch_nj<4>(p, s);
  else if (p.N <= 256) launch_nj<8>(p, s);
  else throw Error("CUDA backend: d_state " + std::to_string(p.N) + " > 256 is not supported");
}

}  // namespace mamba
