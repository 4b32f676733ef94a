#pragma once
// Embedding gather: out[t, :] = table[ids[t], :] as fp32 (the residual stream starts here).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace mamba {

struct EmbeddingParams {
  const void* table = nullptr;  // (V, D) in `dtype`
  DType dtype = DType::F32;
  const int32_t* ids = nullptr;  // (T) on the device, already range-checked by the host
  int64_t T = 0, D = 0;
  float* out = nullptr;  // (T, D)
};

void launch_embedding(const EmbeddingParams& p, cudaStream_t s, bool pdl = false);

}  // namespace mamba
