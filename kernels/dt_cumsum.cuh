#pragma once
// dt = clamp(softplus(dt_raw + dt_bias), lo, hi) and, per chunk of Q steps, the inclusive cumulative
// sum of dt*A (the log-decay the chunked SSD takes differences of). Rows >= T get dt = 0 so padded
// positions contribute nothing and the cumulative sum stays flat to the chunk's end.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace mamba {

struct DtCumsumParams {
  const float* raw = nullptr;  // (T, H) with row stride ld_raw (the dt columns of in_proj's output)
  int64_t ld_raw = 0;
  const float* bias = nullptr;  // (H)
  const float* A = nullptr;     // (H) negative
  float lo = 0.f, hi = 0.f;     // time_step_limit; hi may be +inf
  int64_t T = 0, T_pad = 0, H = 0, Q = 0;
  float* dt = nullptr;  // (H, T_pad)
  float* cs = nullptr;  // (H, T_pad) or null (recurrent scans need no cumulative sums)
};

void launch_dt_cumsum(const DtCumsumParams& p, cudaStream_t s);

}  // namespace mamba
