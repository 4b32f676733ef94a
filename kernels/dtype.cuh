#pragma once
// Device-side conversions between float and the stored element types, and a switch that
// instantiates a kernel launch for the run-time DType.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/dtype.h"

namespace mamba {

template <typename T>
__device__ __forceinline__ float to_f32(T v);
template <>
__device__ __forceinline__ float to_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <>
__device__ __forceinline__ float to_f32<__half>(__half v) {
  return __half2float(v);
}

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) {
  return __float2half_rn(v);
}

// Two adjacent values converted and stored with one 8/4-byte store (dst aligned to two elements).
template <typename T>
__device__ __forceinline__ void store2(T* dst, float a, float b);
template <>
__device__ __forceinline__ void store2<float>(float* dst, float a, float b) {
  *reinterpret_cast<float2*>(dst) = make_float2(a, b);
}
template <>
__device__ __forceinline__ void store2<__nv_bfloat16>(__nv_bfloat16* dst, float a, float b) {
  *reinterpret_cast<__nv_bfloat162*>(dst) = __floats2bfloat162_rn(a, b);
}
template <>
__device__ __forceinline__ void store2<__half>(__half* dst, float a, float b) {
  *reinterpret_cast<__half2*>(dst) = __floats2half2_rn(a, b);
}

__device__ __forceinline__ float silu_f(float v) { return v / (1.f + __expf(-v)); }

// dt = clamp(softplus(v), lo, hi) with torch's softplus threshold, as the CPU reference.
__device__ __forceinline__ float softplus_clamp(float v, float lo, float hi) {
  float s = v > 20.f ? v : log1pf(expf(v));
  if (s < lo) s = lo;
  if (s > hi) s = hi;
  return s;
}

}  // namespace mamba

// MAMBA_DTYPE_SWITCH(dt, T, body): runs `body` with T bound to the C++ type of dt.
#define MAMBA_DTYPE_SWITCH(dt, T, ...) \
  switch (dt) {                        \
    case ::mamba::DType::F32: {        \
      using T = float;                 \
      __VA_ARGS__;                     \
    } break;                           \
    case ::mamba::DType::BF16: {       \
      using T = __nv_bfloat16;         \
      __VA_ARGS__;                     \
    } break;                           \
    case ::mamba::DType::F16: {        \
      using T = __half;                \
      __VA_ARGS__;                     \
    } break;                           \
  }
