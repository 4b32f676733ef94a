#pragma once
// The output side of the chunked SSD, around two batched GEMMs (see ssd_chunked.h):
//  - decay mask: M[c,h][i,j] = CB[c,g][i,j] * exp(cs[i] - cs[j]) * dt[j] for j <= i, else 0, so the
//    intra-chunk (diagonal-block) part is one GEMM y += M X. Only differences of within-chunk sums are
//    exponentiated, so no factor exceeds 1.
//  - row scale: y[t,h,:] *= exp(cs[h,t]) applied to the off-diagonal part C S_in^T before the
//    diagonal part is accumulated on top.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace mamba {

struct SsdDecayMaskParams {
  const float* cb = nullptr;  // (n_chunks, G, Q, Q) row-major C_i . B_j
  const float* dt = nullptr;  // (H, T_pad)
  const float* cs = nullptr;  // (H, T_pad)
  int64_t T_pad = 0, Q = 0, n_chunks = 0, H = 0, G = 0;
  const float* D = nullptr;  // (H) or null: D[h] is added on the diagonal (the skip connection)
  void* M = nullptr;         // (n_chunks, H, Q, Q) in dtype; only the lower triangle is written
  DType dtype = DType::BF16;
};

void launch_ssd_decay_mask(const SsdDecayMaskParams& p, cudaStream_t s);

struct SsdScaleRowsParams {
  float* y = nullptr;  // (T_pad, H*P), row stride ldy
  int64_t ldy = 0;
  const float* cs = nullptr;  // (H, T_pad)
  int64_t T_pad = 0, H = 0, P = 0;
};

void launch_ssd_scale_rows(const SsdScaleRowsParams& p, cudaStream_t s);

}  // namespace mamba
