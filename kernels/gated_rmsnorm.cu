#include "dtype.cuh"
#include "gated_rmsnorm.cuh"
#include "launch.cuh"

namespace mamba {

namespace {
constexpr int kThreads = 256;

struct Gated {
  const float *y, *yo, *x, *z, *cs, *D;
  unsigned P;
  int64_t cs_stride;
  __device__ Gated(const GatedRmsNormParams& p, int64_t t)
      : y(p.y + t * p.ldy), yo(p.y_off ? p.y_off + t * p.ldy : nullptr), x(p.x + t * p.ldx), z(p.z + t * p.ldz),
        cs(p.cs ? p.cs + t : nullptr), D(p.D), P(unsigned(p.P)), cs_stride(p.cs_stride) {}
  __device__ float operator()(int64_t i) const {
    const unsigned h = unsigned(i) / P;
    float v = y[i];
    if (yo) v += expf(cs[h * cs_stride]) * yo[i];
    if (D) v += D[h] * x[i];
    return v * silu_f(z[i]);
  }
};

// One block per (token, group). VPT > 0: the group's gated values stay in registers (one pass over
// the inputs); VPT = 0: any group size, the values are recomputed for the second pass.
template <typename T, int VPT>
__global__ void __launch_bounds__(kThreads) gated_rmsnorm_kernel(GatedRmsNormParams p) {
  __shared__ float scratch[32];
  pdl_wait();
  const int64_t t = blockIdx.x, g = blockIdx.y, gs = p.E / p.G, i0 = g * gs;
  const Gated gated(p, t);
  T* o = static_cast<T*>(p.out) + t * p.ldo;
  float ss = 0.f;
  if constexpr (VPT > 0) {
    float v[VPT];
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      const int64_t i = i0 + threadIdx.x + int64_t(k) * kThreads;
      v[k] = i < i0 + gs ? gated(i) : 0.f;
      ss += v[k] * v[k];
    }
    ss = block_sum(ss, scratch);
    const float r = rsqrtf(ss / float(gs) + p.eps);
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      const int64_t i = i0 + threadIdx.x + int64_t(k) * kThreads;
      if (i < i0 + gs) o[i] = from_f32<T>(v[k] * r * p.w[i]);
    }
  } else {
    for (int64_t i = i0 + threadIdx.x; i < i0 + gs; i += kThreads) {
      const float v = gated(i);
      ss += v * v;
    }
    ss = block_sum(ss, scratch);
    const float r = rsqrtf(ss / float(gs) + p.eps);
    for (int64_t i = i0 + threadIdx.x; i < i0 + gs; i += kThreads) o[i] = from_f32<T>(gated(i) * r * p.w[i]);
  }
}

template <typename T>
void launch_typed(const GatedRmsNormParams& p, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>(p.T), static_cast<unsigned>(p.G)), block(kThreads);
  const int64_t per = (p.E / p.G + kThreads - 1) / kThreads;
  const char* what = "gated_rmsnorm_kernel";
  if (per <= 4) launch_kernel(gated_rmsnorm_kernel<T, 4>, grid, block, 0, s, false, what, p);
  else if (per <= 8) launch_kernel(gated_rmsnorm_kernel<T, 8>, grid, block, 0, s, false, what, p);
  else if (per <= 24) launch_kernel(gated_rmsnorm_kernel<T, 24>, grid, block, 0, s, false, what, p);
  else launch_kernel(gated_rmsnorm_kernel<T, 0>, grid, block, 0, s, false, what, p);
}
}  // namespace

void launch_gated_rmsnorm(const GatedRmsNormParams& p, cudaStream_t s) {
  if (p.T <= 0) return;
  MAMBA_DTYPE_SWITCH(p.out_dtype, T, launch_typed<T>(p, s));
}

}  // namespace mamba
