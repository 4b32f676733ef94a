#pragma once
// RMSNorm of fp32 rows into the projection's input dtype: out[t] = x[t] / rms(x[t]) * w.
// The residual add that precedes it in the layer is fused upstream: out_proj's GEMM accumulates into
// the residual stream (beta = 1) in prefill, and the decode GEMV adds its result in place.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace mamba {

struct RmsNormParams {
  const float* x = nullptr;  // (T, D), row stride ldx
  int64_t ldx = 0;
  const float* w = nullptr;  // (D)
  void* out = nullptr;       // (T, D) in out_dtype, row stride ldo
  DType out_dtype = DType::F32;
  int64_t ldo = 0;
  int64_t T = 0, D = 0;
  float eps = 1e-5f;
};

void launch_rmsnorm(const RmsNormParams& p, cudaStream_t s);

}  // namespace mamba
