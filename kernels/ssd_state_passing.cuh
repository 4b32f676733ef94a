#pragma once
// State passing between chunks, sequential over chunks and parallel over (head, p, n):
//   S_in(0) = state;  S_in(c+1) = exp(sum of dt*A over chunk c) * S_in(c) + S_c;  state = S_in(n_chunks).
// fp32 throughout; S_in is also written in the SSD's matmul dtype for the off-diagonal GEMM.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace mamba {

struct SsdStatePassingParams {
  const float* chunk_states = nullptr;  // (n_chunks, H, P*N) S_c
  const float* cs = nullptr;            // (H, T_pad) within-chunk cumulative dt*A
  float* state = nullptr;               // (H, P*N) in: initial, out: final
  void* s_in = nullptr;                 // (n_chunks, H, P*N) in dtype
  float* s_in_f32 = nullptr;            // probes: S_in in fp32 as well (n_chunks, H, P*N), or null
  DType dtype = DType::BF16;
  int64_t T_pad = 0, Q = 0, n_chunks = 0, H = 0, PN = 0;
};

void launch_ssd_state_passing(const SsdStatePassingParams& p, cudaStream_t s);

}  // namespace mamba
