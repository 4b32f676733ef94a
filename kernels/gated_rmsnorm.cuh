#pragma once
// Prefill's gated grouped RMSNorm with the D skip and the chunked SSD's off-diagonal row scale folded in:
//   v = (y + exp(cs[h,t]) y_off + D[h] x) * silu(z);  out = v / rms(v over its group of E/G channels) * w
// in fp32, written in the out_proj input dtype.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace mamba {

struct GatedRmsNormParams {
  const float* y = nullptr;  // (T, E) SSD output, row stride ldy
  int64_t ldy = 0;
  const float* x = nullptr;  // (T, E) SSD input x (for the D skip), row stride ldx
  int64_t ldx = 0;
  const float* D = nullptr;  // (H) or null: no skip
  int64_t P = 1;             // head_dim: channel i belongs to head i / P
  const float* z = nullptr;  // (T, E) gate, row stride ldz
  int64_t ldz = 0;
  const float* y_off = nullptr;  // (T, E) or null, row stride ldy (SsdChunkedArgs::y_off)
  const float* cs = nullptr;     // (H, cs_stride) within-chunk cumulative dt*A, with y_off
  int64_t cs_stride = 0;
  const float* w = nullptr;  // (E)
  int64_t T = 0, E = 0, G = 1;
  float eps = 1e-5f;
  void* out = nullptr;  // (T, E) in out_dtype, row stride ldo
  DType out_dtype = DType::BF16;
  int64_t ldo = 0;
};

void launch_gated_rmsnorm(const GatedRmsNormParams& p, cudaStream_t s);

// The second half of the gated norm when the fused chunk scan (ssd_chunk_scan_fused.cuh) already wrote
// v = (y + D x) * silu(z) and the per-(token, head) sums of squares:
//   out[t,i] = v[t,i] * rsqrt(sum of ss[t,h] over the heads of i's group / (E/G) + eps) * w[i]
// out may alias v (same dtype and row stride): each element is read before it is written, by the same thread.
struct GatedNormFinishParams {
  const void* v = nullptr;  // (T, E) in v_dtype, row stride ldv
  DType v_dtype = DType::BF16;
  int64_t ldv = 0;
  const float* ss = nullptr;           // (T, H) row stride H
  const float* w = nullptr;            // (E)
  int64_t T = 0, E = 0, H = 0, G = 1;  // H divisible by G: a group is H/G whole heads
  float eps = 1e-5f;
  void* out = nullptr;  // (T, E) in out_dtype, row stride ldo
  DType out_dtype = DType::BF16;
  int64_t ldo = 0;
};

void launch_gated_norm_finish(const GatedNormFinishParams& p, cudaStream_t s);

}  // namespace mamba
