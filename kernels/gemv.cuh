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

#include "kernels/dtype.h"
#include "kernels/lab.cuh"
#include "kernels/sampling.cuh"

namespace mamba {

enum class GemvPrologue { RmsNorm, GroupRmsNorm };

// The blocks' argmax results and their arrival counter (zero between calls: the last block resets it).
constexpr int kMaxArgmaxBlocks = 1024;
struct ArgmaxWorkspace {
  float v[kMaxArgmaxBlocks];
  int32_t i[kMaxArgmaxBlocks];
  unsigned arrived;
};

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
  bool force_streaming = false;  // tests: the streaming kernel even where the shared-memory one would run
  // When this kernel lets its PDL successor launch: at its start (the successor's blocks then sit resident in
  // their own wait while this kernel streams) or, by default, once past its own wait (one kernel of lookahead).
  bool trigger_at_start = false;
  // The LM head of a greedy decode chain (CudaBackend::step_sample_chain; streaming kernel, plain prologue,
  // 16-byte rows) when argmax_ws is set: the argmax over rows < argmax.cfg->n of the results goes out
  // through `argmax` (the id, the next step's token, the stop), so no sampler runs after it; a step the
  // chain has halted does nothing. The next kernel launches only once this one is done.
  ArgmaxWorkspace* argmax_ws = nullptr;
  SampleParams argmax;  // out, cfg (n), chain
  // Lab build: trace; trigger points kGemvTrig*; variant 1 = the streaming kernel's depth-1 x 8 pipeline.
  LabHooks lab;
};

// Lab trigger points (LabHooks::trigger): past the wait, at the start, once a warp has issued its last weight
// load (streaming kernel) or a block has its weights in shared memory.
enum GemvTrigger : int { kGemvTrigWaited = 0, kGemvTrigStart = 1, kGemvTrigLoads = 2 };

void launch_gemv(const GemvParams& p, cudaStream_t s, bool pdl);

}  // namespace mamba
