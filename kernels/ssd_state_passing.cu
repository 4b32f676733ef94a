#include "dtype.cuh"
#include "launch.cuh"
#include "ssd_state_passing.cuh"

namespace mamba {

namespace {
template <typename T>
__global__ void __launch_bounds__(256) ssd_state_passing_kernel(SsdStatePassingParams p) {
  pdl_wait();
  const int64_t h = blockIdx.y;
  const int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (k >= p.PN) return;
  float s = p.state[h * p.PN + k];
  const float* csh = p.cs + h * p.T_pad;
  for (int64_t c = 0; c < p.n_chunks; ++c) {
    const int64_t idx = (c * p.H + h) * p.PN + k;
    static_cast<T*>(p.s_in)[idx] = from_f32<T>(s);
    s = expf(csh[(c + 1) * p.Q - 1]) * s + p.chunk_states[idx];
  }
  p.state[h * p.PN + k] = s;
}
}  // namespace

void launch_ssd_state_passing(const SsdStatePassingParams& p, cudaStream_t s) {
  if (p.n_chunks <= 0) return;
  const dim3 grid(ceil_div(p.PN, 256), static_cast<unsigned>(p.H));
  MAMBA_DTYPE_SWITCH(p.dtype, T, launch_kernel(ssd_state_passing_kernel<T>, grid, dim3(256), 0, s, false, "ssd_state_passing_kernel", p));
}

}  // namespace mamba
