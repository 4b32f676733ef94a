#pragma once
// Mamba-1's depthwise causal conv1d + SiLU over the x half of in_proj's output, and the update of the
// conv window, in the host State's layout: (E, K-1) per layer, oldest input first.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace mamba {

struct Mamba1ConvParams {
  const float* in = nullptr;  // (T, E) row stride ld_in (x | z rows: x first)
  int64_t ld_in = 0;
  const float* w = nullptr;  // (E, K)
  const float* b = nullptr;  // (E) or null
  float* state = nullptr;    // (E, K-1) in/out: the last K-1 inputs before this call, oldest first
  float* out = nullptr;      // (T, E) dense: silu(conv)
  int64_t T = 0, E = 0, K = 0;
};

// Two kernels on `s`: the conv (reading the old window), then the window update.
void launch_mamba1_conv(const Mamba1ConvParams& p, cudaStream_t s);

}  // namespace mamba
