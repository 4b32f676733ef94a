#include "kernels/dtype.cuh"
#include "kernels/launch.cuh"
#include "kernels/ssd_chunk_state.cuh"

namespace mamba {

namespace {
template <typename T>
__global__ void __launch_bounds__(256) ssd_scale_x_kernel(SsdScaleXParams p) {
  pdl_wait();
  const int64_t t = blockIdx.y;
  const int64_t HP = p.H * p.P;
  const int64_t end = (t / p.Q + 1) * p.Q - 1;  // T_pad is a multiple of Q
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < HP; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t h = i / p.P;
    const float* csh = p.cs + h * p.T_pad;
    const float w = expf(csh[end] - csh[t]) * p.dt[h * p.T_pad + t];
    static_cast<T*>(p.xs)[t * p.ldxs + i] = from_f32<T>(p.x[t * p.ldx + i] * w);
  }
}
}  // namespace

void launch_ssd_scale_x(const SsdScaleXParams& p, cudaStream_t s) {
  if (p.T_pad <= 0) return;
  const dim3 grid(std::min<unsigned>(ceil_div(p.H * p.P, 256), 32u), static_cast<unsigned>(p.T_pad));
  MAMBA_DTYPE_SWITCH(p.dtype, T, launch_kernel(ssd_scale_x_kernel<T>, grid, dim3(256), 0, s, false, "ssd_scale_x_kernel", p));
}

}  // namespace mamba
