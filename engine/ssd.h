#pragma once
// The SSD scan y = SSD(x, dt, A, B, C) in its three forms (DESIGN.md): recurrent, chunked, matrix.
// All take the initial state and leave the final one, so any split of a sequence gives the same result.
#include <cstdint>
#include <vector>

namespace mamba {

struct SsdArgs {
  int64_t T = 0, H = 0, P = 0, G = 0, N = 0;
  const float* x = nullptr;                              // (T, H, P)  x[t*ldx + h*P + p]
  const float* B = nullptr;                              // (T, G, N)  B[t*ldb + g*N + n]
  const float* C = nullptr;                              // (T, G, N)
  const float* dt = nullptr;                             // (T, H)  after softplus and clamp
  const float* A = nullptr;                              // (H)  negative
  float* y = nullptr;                                    // (T, H, P)  written (not accumulated)
  float* state = nullptr;                                // (H, P, N)  in: initial state, out: final state
  int64_t ldx = 0, ldb = 0, ldc = 0, lddt = 0, ldy = 0;  // row strides of the above
  // Probe (engine/probes.h), or null: ||S_t||_F per position and head, the state after token t. (T, H) dense.
  float* state_norm = nullptr;
};

// S_t = exp(dt_t A) S_{t-1} + dt_t x_t B_t^T,  y_t = S_t C_t.   Parallel over heads.
void ssd_recurrent(const SsdArgs& a);

// ssd_minimal's four steps over chunks of `chunk_size` (any size >= 1; the last chunk may be partial).
// With a.state_norm, each chunk's entry state (step 3) is also advanced through the chunk's positions by
// the recurrence to take the norm after every token: O(T P N) more work, the recurrent scan's.
void ssd_chunked(const SsdArgs& a, int64_t chunk_size);

// The "attention" form for one head: M (T, T) row-major, lower-triangular,
// M[t,s] = (C_t . B_s) exp(sum_{k=s+1..t} dt_k A) dt_s. Ignores the initial state.
std::vector<float> ssd_matrix(const SsdArgs& a, int64_t head);

}  // namespace mamba
