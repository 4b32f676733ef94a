#pragma once
// Chunk-state preparation: xs[t,h,:] = x[t,h,:] * exp(cs[h,end(c)] - cs[h,t]) * dt[h,t], the inputs
// weighted by their decay to the end of their chunk. A batched GEMM then forms each chunk's state
// S_c[h] = xs_c[h]^T B_c (P x N); scaling x (not B) keeps B shared by the heads of a group.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace mamba {

struct SsdScaleXParams {
  const float* x = nullptr;  // (T_pad, H*P) fp32, row stride ldx
  int64_t ldx = 0;
  const float* dt = nullptr;  // (H, T_pad)
  const float* cs = nullptr;  // (H, T_pad) within-chunk cumulative dt*A
  int64_t T_pad = 0, Q = 0, H = 0, P = 0;
  void* xs = nullptr;  // (T_pad, H*P) in dtype, row stride ldxs
  int64_t ldxs = 0;
  DType dtype = DType::BF16;
};

void launch_ssd_scale_x(const SsdScaleXParams& p, cudaStream_t s);

}  // namespace mamba
