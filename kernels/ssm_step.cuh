#pragma once
// One decode step of the mixer between the two projections, fused in one kernel per layer:
// conv window update + conv + SiLU (for the channels this block needs), dt softplus/clamp,
// the selective state update S = exp(dt A) S + dt x B^T, y = S C + D x, and (gate) y *= silu(z) so
// the out_proj GEMV only has to normalise.
//
// Each block owns a head and 8 rows of its state. It recomputes the conv of the group's B and C
// channels itself (2N short dot products) instead of waiting for another kernel; the conv ring
// (conv1d.cuh) lets it store the new input in the one slot no block reads during this step.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/decode_probes.h"
#include "kernels/lab.cuh"

namespace mamba {

constexpr int kSsmStepRows = 8;  // (head, p) rows of the state per block
constexpr int kSsmSkipStore = 1;

struct SsmStepParams {
  const float* zx = nullptr;         // (d_in_proj) in_proj output: z (E) | xBC (conv_dim) | dt_raw (H)
  const int32_t* step_io = nullptr;  // device [token, ring position of this token]
  int64_t E = 0, conv_dim = 0, H = 0, P = 0, G = 0, N = 0, K = 0;
  const float* conv_w = nullptr;   // (conv_dim, K)
  const float* conv_b = nullptr;   // (conv_dim) or null
  float* ring = nullptr;           // (conv_dim, K)
  const float* dt_bias = nullptr;  // (H)
  const float* A = nullptr;        // (H)
  const float* D = nullptr;        // (H)
  float dt_lo = 0.f, dt_hi = 0.f;
  float* state = nullptr;               // (H, P, N)
  float* y = nullptr;                   // (E) with the D skip
  bool gate = false;                    // y *= silu(z), z = zx[0, E)
  const void* prefetch_next = nullptr;  // pulled into L2 by the grid at its start (the next layer's state), or null
  int64_t prefetch_next_bytes = 0;
  // When this kernel lets its PDL successor launch: at its start (the successor's blocks then sit
  // resident in their own wait) or once past its own wait (one kernel of lookahead).
  bool trigger_at_start = false;
  // Probes (decode_probes.h), or null: the instance that also writes this layer's dt (blocks x = 0), each
  // block's part of its head's state and output sums of squares (part = blockIdx.x, kSsmStepRows rows), and
  // (block 0, 0) the sum of squares of probe_resid, the residual entering the layer (probe_D floats).
  float* probe = nullptr;
  DecodeProbeLayout probe_layout;
  const float* probe_resid = nullptr;
  int64_t probe_D = 0;
  LabHooks lab;  // lab build: trace; skip bit kSsmSkipStore leaves the state stores out
};

void launch_ssm_step(const SsmStepParams& p, cudaStream_t s, bool pdl);

}  // namespace mamba
