#pragma once
// The decode projections: out[r] (+)= W[r, :] . xin (+ bias[r]) for one token, W in the weight dtype,
// with the normalisation that produces xin fused into each block's prologue (every block recomputes
// it from L2: a few KB against the megabytes of weights it streams):
//   RmsNorm:       xin = rmsnorm(x) * norm_w            (in_proj and the LM head)
//   GroupRmsNorm:  xin = rmsnorm_grouped(x) * norm_w    (out_proj on the already gated SSD output,
//                                                        accumulating into the residual)
// One warp streams RPW rows with 16-byte loads; under PDL each warp first asks L2 to prefetch its rows
// so the weight stream starts while the previous kernel is still running.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "dtype.h"

namespace mamba {

enum class GemvPrologue { RmsNorm, GroupRmsNorm };

struct GemvParams {
  const void* W = nullptr;  // (R, K) row-major in wdtype
  DType wdtype = DType::BF16;
  int64_t R = 0, K = 0;
  const float* bias = nullptr;  // (R) or null
  GemvPrologue prologue = GemvPrologue::RmsNorm;
  const float* x = nullptr;       // (K) residual (RmsNorm) or gated SSD output (GroupRmsNorm)
  const float* norm_w = nullptr;  // (K)
  int64_t groups = 1;             // norm groups (GroupRmsNorm)
  float eps = 1e-5f;
  float* out = nullptr;  // (R)
  bool accumulate = false;
  int64_t prefetch_budget_bytes = 0;  // L2 prefetch spread over all warps; 0 = none
};

void launch_gemv(const GemvParams& p, cudaStream_t s, bool pdl);

}  // namespace mamba
