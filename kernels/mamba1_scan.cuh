#pragma once
// Mamba-1's selective scan on the device (engine/mamba1_scan.h is the CPU reference), with dt's bias and
// softplus and the output gate fused:
//   dt_t[c] = softplus(dt_raw[t,c] + dt_bias[c])
//   h_t[c,n] = exp(dt_t[c] A[c,n]) h_{t-1}[c,n] + dt_t[c] B_t[n] x_t[c]
//   y_t[c] = (sum_n h_t[c,n] C_t[n] + D[c] x_t[c]) * silu(z_t[c])
// Parallel over channels (a group of lanes per channel, one lane per state entry), sequential over t:
// the state stays in registers for the whole sequence.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace mamba {

struct Mamba1ScanParams {
  int64_t T = 0, E = 0, N = 0;
  const float* x = nullptr;        // (T, E) dense, after conv + SiLU
  const float* dt_raw = nullptr;   // (T, E) dense, dt_proj's output before the bias
  const float* dt_bias = nullptr;  // (E)
  const float* B = nullptr;        // (T, N) row stride ldbc
  const float* C = nullptr;        // (T, N) row stride ldbc
  int64_t ldbc = 0;
  const float* A = nullptr;  // (E, N) negative
  const float* D = nullptr;  // (E)
  const float* z = nullptr;  // (T, E) row stride ldz: the gate
  int64_t ldz = 0;
  float* state = nullptr;  // (E, N) in/out
  void* y = nullptr;       // (T, E) dense in y_dtype: the gated output, out_proj's input
  DType y_dtype = DType::F32;
  // Probes, each null for none: dt (T, E), the output before the gate (T, E), sum_n h^2 (T, E).
  float* dt_out = nullptr;
  float* y_pre = nullptr;
  float* state_sq = nullptr;
};

// N up to 128.
void launch_mamba1_scan(const Mamba1ScanParams& p, cudaStream_t s);

}  // namespace mamba
