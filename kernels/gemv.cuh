#pragma once
// The decode projections: out[r] (+)= W[r, :] . xin (+ bias[r]) for one token, W in the weight dtype,
// with the normalisation that produces xin fused into each block's prologue (every block recomputes
// it from L2: a few KB against the megabytes of weights it streams):
//   RmsNorm:       xin = rmsnorm(x) * norm_w            (in_proj and the LM head)
//   GroupRmsNorm:  xin = rmsnorm_grouped(x) * norm_w    (out_proj on the already gated SSD output,
//                                                        accumulating into the residual)
// Two kernels: when each SM's share of W fits in 64 KB of shared memory (a small model's projections),
// every block copies its rows there before waiting for the previous kernel (PDL), so only the prologue
// remains after the wait; otherwise one warp streams RPW rows with 16-byte loads, the first batch
// loaded before the wait. Either grid can ask L2 for the next layer's weights (prefetch_next).
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
  const void* prefetch_next = nullptr;  // pulled into L2 by the whole grid at its start (or null)
  int64_t prefetch_next_bytes = 0;
  unsigned long long* trace = nullptr;  // 4 timestamps (launch.cuh trace_*) or null
  bool force_streaming = false;  // tests: skip the shared-memory kernel for small matrices
  // When this kernel lets its PDL successor launch: at its start (the successor's blocks then sit
  // resident in their own wait, and a chain of them can pile up several kernels deep) or once past
  // its own wait (one kernel of lookahead).
  bool trigger_at_start = false;
  // Streaming kernel: each warp lets the successor launch once it has issued its last weight load (the
  // successor's own weight loads then queue right behind this kernel's, not behind its tail).
  bool trigger_after_loads = false;
  // Decode with the out_proj fused into the SSM step (ssm_step.cuh, two kernels per layer): the RmsNorm
  // prologue first finishes the previous layer's out_proj,
  //   x = x + acc_bias + sum_q acc[q] * rsqrt(acc_ss[q] / acc_group_size + eps),
  // block 0 stores that x to x_out (the residual for the next layer) and zeroes [zero, zero + zero_n)
  // (this layer's accumulators, filled by the SSM step after this kernel).
  const float* acc = nullptr;     // (acc_groups, K) or null
  const float* acc_ss = nullptr;  // (acc_groups)
  const float* acc_bias = nullptr;  // (K) or null
  int64_t acc_groups = 0, acc_group_size = 1;
  float* x_out = nullptr;
  float* zero = nullptr;
  int64_t zero_n = 0;
};

void launch_gemv(const GemvParams& p, cudaStream_t s, bool pdl);

}  // namespace mamba
