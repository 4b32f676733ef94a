#pragma once
// Depthwise causal conv1d + SiLU over the xBC channels, for prefill, and the update of the conv window.
//
// The conv window lives on the device as a ring of K slots per channel (K = conv kernel): the input
// of relative token i (0 = the next token) sits in slot ((pos + i) mod K). A ring of K rather than
// K-1 slots means a step writes its new input into the one slot nobody reads in that step, so the
// fused decode kernel needs no second pass to shift the window (see ssm_step.cuh).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace mamba {

inline int64_t ring_slot(int64_t pos, int64_t rel, int64_t K) { return ((pos + rel) % K + K) % K; }

struct Conv1dParams {
  const float* in = nullptr;  // (T, C) raw xBC, row stride ld_in
  int64_t ld_in = 0;
  const float* w = nullptr;     // (C, K)
  const float* b = nullptr;     // (C) or null
  const float* ring = nullptr;  // (C, K) the window before this call
  int64_t pos = 0;              // ring position of the first new token
  int64_t T = 0, T_pad = 0, C = 0, K = 0;
  float* out = nullptr;     // (T_pad, C) fp32, rows >= T written as zero
  void* out_act = nullptr;  // optional copy of `out` in act_dtype (the SSD's matmul operand)
  DType act_dtype = DType::BF16;
  // Optional, for the chunked SSD (saves a pass over x): xs[t, i] = x[t, i] * exp(cs[h, end(t)] - cs[h, t]) * dt[h, t]
  // for the x channels i < E (h = i / P, end(t) = last step of t's chunk of Q), in act_dtype, row stride E.
  void* xs = nullptr;
  const float* dt = nullptr;    // (H, T_pad)
  const float* cs = nullptr;    // (H, T_pad)
  int64_t E = 0, P = 1, Q = 1;  // T_pad must then be a multiple of Q
  // > 0: the fp32 `out` is written only for channels < out_cols (the fused chunk scan reads fp32 x alone;
  // B and C are read in act_dtype only). 0: all channels.
  int64_t out_cols = 0;
};

void launch_conv1d_silu(const Conv1dParams& p, cudaStream_t s);  // K <= 8

struct ConvRingUpdateParams {
  const float* in = nullptr;  // (T, C) raw xBC, row stride ld_in
  int64_t ld_in = 0;
  float* ring = nullptr;  // (C, K)
  int64_t pos = 0, T = 0, C = 0, K = 0;
};

// Stores the last min(T, K-1) inputs; afterwards the ring position is (pos + T) mod K.
void launch_conv_ring_update(const ConvRingUpdateParams& p, cudaStream_t s);

}  // namespace mamba
