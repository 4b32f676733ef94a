#include "kernels/dtype.cuh"
#include "kernels/launch.cuh"
#include "kernels/ssd_state_passing.cuh"

namespace mamba {

namespace {
// F32: the instance that also writes s_in_f32.
template <typename T, bool F32>
__global__ void __launch_bounds__(256) ssd_state_passing_kernel(SsdStatePassingParams p) {
  pdl_wait();
  const int64_t h = blockIdx.y;
  const int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (k >= p.PN) return;
  float s = p.state[h * p.PN + k];
  const float* csh = p.cs + h * p.T_pad;
  // Chunks in batches of kB, each batch's loads issued before its stores (which could alias them as far
  // as the compiler knows): one memory round trip per batch instead of one per chunk.
  constexpr int kB = 8;
  for (int64_t c0 = 0; c0 < p.n_chunks; c0 += kB) {
    float cst[kB], decay[kB];
#pragma unroll
    for (int b = 0; b < kB; ++b) {
      const int64_t c = c0 + b;
      cst[b] = c < p.n_chunks ? p.chunk_states[(c * p.H + h) * p.PN + k] : 0.f;
      decay[b] = c < p.n_chunks ? expf(csh[(c + 1) * p.Q - 1]) : 1.f;
    }
#pragma unroll
    for (int b = 0; b < kB; ++b) {
      const int64_t c = c0 + b;
      if (c < p.n_chunks) {
        static_cast<T*>(p.s_in)[(c * p.H + h) * p.PN + k] = from_f32<T>(s);
        if constexpr (F32) p.s_in_f32[(c * p.H + h) * p.PN + k] = s;
        s = decay[b] * s + cst[b];
      }
    }
  }
  p.state[h * p.PN + k] = s;
}
}  // namespace

void launch_ssd_state_passing(const SsdStatePassingParams& p, cudaStream_t s) {
  if (p.n_chunks <= 0) return;
  const dim3 grid(ceil_div(p.PN, 256), static_cast<unsigned>(p.H));
  if (p.s_in_f32) {
    MAMBA_DTYPE_SWITCH(p.dtype, T,
                       launch_kernel(ssd_state_passing_kernel<T, true>, grid, dim3(256), 0, s, false, "ssd_state_passing_kernel", p));
  } else {
    MAMBA_DTYPE_SWITCH(p.dtype, T,
                       launch_kernel(ssd_state_passing_kernel<T, false>, grid, dim3(256), 0, s, false, "ssd_state_passing_kernel", p));
  }
}

}  // namespace mamba
