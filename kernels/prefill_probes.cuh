#pragma once
// The probes of one layer of a prefill pass (engine/probes.h), from what the layer computed, per token t:
//   dt[t, h]          the step, from dt (H, dt_stride)
//   state_norm[t, h]  sqrt of the sum over the head's P rows of state_ss (the rows' sums of squares after t)
//   y_norm[t, h]      ||y[t, h, :] + D[h] x[t, h, :]||, y being the SSD output without the skip
//   resid_norm[t]     ||resid[t, :]||, the residual entering the layer
// into out = dt (T, H) | state_norm (T, H) | y_norm (T, H) | resid_norm (T): LayerProbe's arrays.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace mamba {

struct PrefillProbeParams {
  int64_t T = 0, H = 0, P = 0, D = 0;
  const float* dt = nullptr;  // (H, dt_stride)
  int64_t dt_stride = 0;
  const float* state_ss = nullptr;  // (T, H*P), row stride ld
  const float* y = nullptr;         // (T, H*P), row stride ld
  int64_t ld = 0;
  const float* x = nullptr;  // (T, H*P), row stride ldx
  int64_t ldx = 0;
  const float* Dskip = nullptr;  // (H)
  const float* resid = nullptr;  // (T, D), dense
  float* out = nullptr;          // (3 T H + T)
};

void launch_prefill_probes(const PrefillProbeParams& p, cudaStream_t s);

}  // namespace mamba
