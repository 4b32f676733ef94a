#include "dtype.cuh"
#include "launch.cuh"
#include "rmsnorm.cuh"

namespace mamba {

namespace {
template <typename T>
__global__ void __launch_bounds__(256) rmsnorm_kernel(RmsNormParams p) {
  __shared__ float scratch[32];
  pdl_wait();
  const float* x = p.x + int64_t(blockIdx.x) * p.ldx;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < p.D; i += blockDim.x) ss += x[i] * x[i];
  ss = block_sum(ss, scratch);
  const float r = rsqrtf(ss / float(p.D) + p.eps);
  T* o = static_cast<T*>(p.out) + int64_t(blockIdx.x) * p.ldo;
  for (int64_t i = threadIdx.x; i < p.D; i += blockDim.x) o[i] = from_f32<T>(x[i] * r * p.w[i]);
}
}  // namespace

void launch_rmsnorm(const RmsNormParams& p, cudaStream_t s) {
  if (p.T <= 0) return;
  MAMBA_DTYPE_SWITCH(p.out_dtype, T, launch_kernel(rmsnorm_kernel<T>, dim3(static_cast<unsigned>(p.T)), dim3(256), 0, s, false, "rmsnorm_kernel", p));
}

}  // namespace mamba
