#pragma once
// The recurrent SSD over T steps (the reference form on the GPU, and --scan recurrent):
//   S_t = exp(dt_t A) S_{t-1} + dt_t x_t B_t^T,   y_t = S_t C_t        (fp32, no D skip)
// One warp per (head, p) row of the state, kept in registers across the whole sequence.
// Probes: with state_ss set, also the sum of squares of each row after every step. Rescan (s_in set): each
// chunk of Q steps starts from its entry state S_in(c) and runs in parallel with the others, for the probes
// of the chunked scan; the live state is then neither read nor written.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace mamba {

struct SsdRecurrentParams {
  const float* x = nullptr;  // (T, H*P), row stride ldx
  const float* B = nullptr;  // (T, G*N), row stride ldx
  const float* C = nullptr;  // (T, G*N), row stride ldx
  int64_t ldx = 0;
  const float* dt = nullptr;  // (H, dt_stride): dt[h * dt_stride + t]
  int64_t dt_stride = 0;
  const float* A = nullptr;  // (H)
  float* state = nullptr;    // (H, P, N) in/out
  float* y = nullptr;        // (T, H*P), row stride ldy
  int64_t ldy = 0;
  int64_t T = 0, H = 0, P = 0, G = 0, N = 0;  // N <= 256
  float* state_ss = nullptr;                  // probes: (T, H*P) per row, row stride ldy, or null
  const float* s_in = nullptr;                // rescan: (ceil(T / Q), H, P, N) the chunks' entry states, or null
  int64_t Q = 0;
};

void launch_ssd_recurrent(const SsdRecurrentParams& p, cudaStream_t s);

}  // namespace mamba
