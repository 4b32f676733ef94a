#include "kernels/launch.cuh"
#include "kernels/prefill_probes.cuh"

namespace mamba {

namespace {
constexpr int kWarps = 4;

// One block per token: every warp takes heads warp, warp + kWarps, ...; the block sums the residual.
__global__ void __launch_bounds__(kWarps * 32) prefill_probes_kernel(PrefillProbeParams p) {
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x, T = p.T, H = p.H, P = p.P;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t h = warp; h < H; h += kWarps) {
    const float d = p.Dskip[h];
    float ss = 0.f, yy = 0.f;
    for (int64_t i = lane; i < P; i += 32) {
      const int64_t c = h * P + i;
      ss += p.state_ss[t * p.ld + c];
      const float y = p.y[t * p.ld + c] + d * p.x[t * p.ldx + c];
      yy += y * y;
    }
    ss = warp_sum(ss);
    yy = warp_sum(yy);
    if (lane == 0) {
      p.out[t * H + h] = p.dt[h * p.dt_stride + t];
      p.out[(T + t) * H + h] = sqrtf(ss);
      p.out[(2 * T + t) * H + h] = sqrtf(yy);
    }
  }
  float r = 0.f;
  for (int64_t i = threadIdx.x; i < p.D; i += kWarps * 32) r += p.resid[t * p.D + i] * p.resid[t * p.D + i];
  r = block_sum(r, scratch);
  if (threadIdx.x == 0) p.out[3 * T * H + t] = sqrtf(r);
}
}  // namespace

void launch_prefill_probes(const PrefillProbeParams& p, cudaStream_t s) {
  if (p.T <= 0) return;
  launch_kernel(prefill_probes_kernel, dim3(static_cast<unsigned>(p.T)), dim3(kWarps * 32), 0, s, false, "prefill_probes_kernel", p);
}

}  // namespace mamba
