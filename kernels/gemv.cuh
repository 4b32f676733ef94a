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

// Streaming kernel: how many batches of weights a warp keeps in registers or in flight (depth), and the
// 16-byte vectors per lane in one batch. Depth 2 (the default) loads the next batch while it uses the
// current one, and two before the PDL wait; depth 1 loads a batch, waits for it and uses it. Depth 2 x 8
// was measured too (2.7b decode 2.24 ms against 1.97 for 2 x 4: 128 registers, 2 blocks per SM).
enum class GemvPipeline { Depth2Batch4, Depth1Batch8 };

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
  bool force_streaming = false;         // tests: skip the shared-memory kernel for small matrices
  GemvPipeline pipeline = GemvPipeline::Depth2Batch4;
  // When this kernel lets its PDL successor launch: at its start (the successor's blocks then sit
  // resident in their own wait, and a chain of them can pile up several kernels deep) or once past
  // its own wait (one kernel of lookahead).
  bool trigger_at_start = false;
  // Each warp of the streaming kernel lets the successor launch once it has issued its last weight load,
  // a block of the shared-memory kernel once its weights are in (the successor's own loads then queue
  // right behind this kernel's, not behind its tail).
  bool trigger_after_loads = false;
  // The LM head of a greedy decode chain (CudaBackend::step_sample_chain; streaming kernel, plain prologue,
  // 16-byte rows) when argmax_ws is set: the argmax over rows < argmax.cfg->n of the results goes out
  // through `argmax` (the id, the next step's token, the stop), so no sampler runs after it; a step the
  // chain has halted does nothing. chain_trigger replaces the trigger flags above: the next kernel may
  // launch 0 when this one is done, 1 once past the wait, 2 once every warp has issued its last weight load.
  ArgmaxWorkspace* argmax_ws = nullptr;
  SampleParams argmax;  // out, cfg (n), chain
  int chain_trigger = 0;
};

void launch_gemv(const GemvParams& p, cudaStream_t s, bool pdl);

}  // namespace mamba
