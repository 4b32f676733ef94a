#include "engine/error.h"
#include "kernels/dtype.cuh"
#include "kernels/gated_rmsnorm.cuh"
#include "kernels/launch.cuh"

namespace mamba {

namespace {
constexpr int kThreads = 256;

struct Gated {
  const float *y, *yo, *x, *z, *cs, *D;
  unsigned P;
  int64_t cs_stride;
  __device__ Gated(const GatedRmsNormParams& p, int64_t t)
      : y(p.y + t * p.ldy),
        yo(p.y_off ? p.y_off + t * p.ldy : nullptr),
        x(p.x + t * p.ldx),
        z(p.z + t * p.ldz),
        cs(p.cs ? p.cs + t : nullptr),
        D(p.D),
        P(unsigned(p.P)),
        cs_stride(p.cs_stride) {}
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

// 8 consecutive elements between memory and fp32 registers, 16-byte accesses (32 for fp32).
__device__ __forceinline__ void load8(const float* src, float (&f)[8]) {
  const float4 a = reinterpret_cast<const float4*>(src)[0], b = reinterpret_cast<const float4*>(src)[1];
  f[0] = a.x;
  f[1] = a.y;
  f[2] = a.z;
  f[3] = a.w;
  f[4] = b.x;
  f[5] = b.y;
  f[6] = b.z;
  f[7] = b.w;
}
template <typename T2, typename T>
__device__ __forceinline__ void load8_half2(const T* src, float (&f)[8]) {
  const uint4 u = *reinterpret_cast<const uint4*>(src);
  const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const T2 pair = *reinterpret_cast<const T2*>(&w[k]);
    f[2 * k] = to_f32<T>(pair.x);
    f[2 * k + 1] = to_f32<T>(pair.y);
  }
}
__device__ __forceinline__ void load8(const __nv_bfloat16* src, float (&f)[8]) { load8_half2<__nv_bfloat162>(src, f); }
__device__ __forceinline__ void load8(const __half* src, float (&f)[8]) { load8_half2<__half2>(src, f); }

__device__ __forceinline__ void store8(float* dst, const float (&f)[8]) {
  reinterpret_cast<float4*>(dst)[0] = make_float4(f[0], f[1], f[2], f[3]);
  reinterpret_cast<float4*>(dst)[1] = make_float4(f[4], f[5], f[6], f[7]);
}
template <typename T>
__device__ __forceinline__ void store8(T* dst, const float (&f)[8]) {
  T h[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) h[k] = from_f32<T>(f[k]);
  *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(h);
}

constexpr int kFinishThreads = 128;

// One block per token: the group factors from the per-head sums of squares, then one pass over the row.
// No __restrict__: out may alias v.
template <typename TV, typename TO>
__global__ void __launch_bounds__(kFinishThreads) gated_norm_finish_kernel(GatedNormFinishParams p, bool vec8) {
  extern __shared__ float r_group[];  // (G) 1 / rms of each group of this token
  pdl_wait();
  const int64_t t = blockIdx.x;
  const int G = int(p.G), hpg = int(p.H / p.G), warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const unsigned E = unsigned(p.E), gs = unsigned(p.E / p.G);
  const float inv_gs = 1.f / float(gs);
  const float* ss = p.ss + t * p.H;
  for (int g = warp; g < G; g += kFinishThreads / 32) {
    float sum = 0.f;
    for (int k = lane; k < hpg; k += 32) sum += ss[g * hpg + k];
    sum = warp_sum(sum);
    if (lane == 0) r_group[g] = rsqrtf(sum * inv_gs + p.eps);
  }
  __syncthreads();
  const TV* v = static_cast<const TV*>(p.v) + t * p.ldv;
  TO* o = static_cast<TO*>(p.out) + t * p.ldo;
  if (vec8) {
    for (unsigned i = 8 * threadIdx.x; i < E; i += 8 * kFinishThreads) {
      float f[8], w[8];
      load8(v + i, f);
      load8(p.w + i, w);
      const float r = r_group[i / gs];
#pragma unroll
      for (int k = 0; k < 8; ++k) f[k] = f[k] * r * w[k];
      store8(o + i, f);
    }
  } else {
    for (unsigned i = threadIdx.x; i < E; i += kFinishThreads) o[i] = from_f32<TO>(to_f32<TV>(v[i]) * r_group[i / gs] * p.w[i]);
  }
}

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

template <typename TV>
void launch_finish(const GatedNormFinishParams& p, cudaStream_t s) {
  const bool vec8 =
      p.E % 8 == 0 && (p.E / p.G) % 8 == 0 && p.ldv % 8 == 0 && p.ldo % 8 == 0 && aligned16(p.v) && aligned16(p.out) && aligned16(p.w);
  const size_t smem = sizeof(float) * size_t(p.G);
  const char* what = "gated_norm_finish_kernel";
  const dim3 grid(static_cast<unsigned>(p.T)), block(kFinishThreads);
  MAMBA_DTYPE_SWITCH(p.out_dtype, TO, launch_kernel(gated_norm_finish_kernel<TV, TO>, grid, block, smem, s, false, what, p, vec8));
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

void launch_gated_norm_finish(const GatedNormFinishParams& p, cudaStream_t s) {
  if (p.T <= 0) return;
  if (p.G < 1 || p.H % p.G != 0 || p.E % p.H != 0) throw Error("gated norm finish: groups must hold whole heads");
  if (p.G > 8192) throw Error("gated norm finish: too many groups");
  switch (p.v_dtype) {
    case DType::F32: launch_finish<float>(p, s); break;
    case DType::BF16: launch_finish<__nv_bfloat16>(p, s); break;
    case DType::F16: launch_finish<__half>(p, s); break;
  }
}

}  // namespace mamba
