#pragma once
// 16-byte shared-memory loads, the dot of one 16-byte weight vector with its floats of the input, and a
// lane's input vectors: the inner loops of the decode GEMVs (gemv.cu) and of the one-kernel decode layer
// (decode_layer.cu).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/launch.cuh"

namespace mamba {

// 16-byte shared-memory loads, spelled out. Left to itself the compiler slices a float4/uint4 load whose
// parts are used separately into 4-byte (even 2-byte) loads; on xin's 32-byte lane stride that meant
// 8-way bank conflicts, ~4 us per GEMV at 130m.
__device__ __forceinline__ float4 lds_f4(const float* p) {
  float4 v;
  asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(smem_u32(p)));
  return v;
}
__device__ __forceinline__ uint4 lds_u4(const void* p) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(smem_u32(p)));
  return v;
}

// Dot of one 16-byte weight vector with its EPV floats of the input, held as EPV/4 float4.
__device__ __forceinline__ float dot16r(const uint4& v, const float4* x, float*) {
  const float4 a = *reinterpret_cast<const float4*>(&v);
  return a.x * x[0].x + a.y * x[0].y + a.z * x[0].z + a.w * x[0].w;
}
template <typename H2, typename F>
__device__ __forceinline__ float dot16r_half2(const uint4& v, const float4* x, F to_float2) {
  const H2* w = reinterpret_cast<const H2*>(&v);
  const float2 f0 = to_float2(w[0]), f1 = to_float2(w[1]), f2 = to_float2(w[2]), f3 = to_float2(w[3]);
  return f0.x * x[0].x + f0.y * x[0].y + f1.x * x[0].z + f1.y * x[0].w + f2.x * x[1].x + f2.y * x[1].y + f3.x * x[1].z + f3.y * x[1].w;
}
__device__ __forceinline__ float dot16r(const uint4& v, const float4* x, __nv_bfloat16*) {
  return dot16r_half2<__nv_bfloat162>(v, x, [](__nv_bfloat162 h) { return __bfloat1622float2(h); });
}
__device__ __forceinline__ float dot16r(const uint4& v, const float4* x, __half*) {
  return dot16r_half2<__half2>(v, x, [](__half2 h) { return __half22float2(h); });
}

// This lane's NV 16-byte input vectors (vector i = lane + 32 v holds floats [i EPV, (i + 1) EPV) of x, in
// shared memory) as float4s, zero past nvec: what the decode GEMVs keep in registers for their dots.
template <int NV, int Q>
__device__ __forceinline__ void load_lane_vectors(float4 (&xr)[NV][Q], const float* x, int64_t nvec, int lane) {
#pragma unroll
  for (int v = 0; v < NV; ++v) {
    const int64_t i = lane + 32 * v;
#pragma unroll
    for (int q = 0; q < Q; ++q) xr[v][q] = i < nvec ? lds_f4(x + i * 4 * Q + 4 * q) : make_float4(0.f, 0.f, 0.f, 0.f);
  }
}

}  // namespace mamba
