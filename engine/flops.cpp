#include "engine/flops.h"

#include <algorithm>

#include "engine/error.h"

namespace mamba {

int64_t scan_flops_recurrent(const Config& c, int64_t T) {
  // per token and head: the state update decay*S + (dt x) B^T (3 P N, plus P for dt x), the readout S C (2 P N)
  return T * c.n_heads * c.head_dim * (5 * c.d_state + 1);
}

int64_t scan_flops_chunked(const Config& c, int64_t T, int64_t Q) {
  if (Q < 1) throw Error("chunk size must be >= 1");
  const int64_t H = c.n_heads, P = c.head_dim, N = c.d_state, G = c.n_groups;
  int64_t f = 0;
  for (int64_t t0 = 0; t0 < T; t0 += Q) {  // chunk by chunk, as the scan runs
    const int64_t l = std::min(Q, T - t0);
    f += G * 2 * l * l * N;  // C B^T inside the chunk, once per group (full l x l product)
    f += H * 2 * l * l * P;  // 1. diagonal block (W: l x l) X (l x P)
    f += H * 2 * l * P * N;  // 2. chunk state X^T (l x P)^T (B scaled: l x N)
    f += H * 2 * P * N;      // 3. state passing decay * S_in + S_c
    f += H * 2 * l * P * N;  // 4. off-diagonal (C scaled: l x N) S_in^T (N x P)
  }
  return f;
}

FlopCount forward_flops(const Config& c, int64_t T, ScanMode scan, int64_t Q, int64_t logit_rows) {
  FlopCount f;
  const int64_t L = c.n_layer;
  f.projections = L * 2 * T * c.d_model * (c.d_in_proj + c.d_inner);
  f.conv = L * 2 * T * c.d_conv * c.conv_dim;
  f.scan = L * (scan == ScanMode::Chunked && T > 1 ? scan_flops_chunked(c, T, Q) : scan_flops_recurrent(c, T));
  f.lm_head = 2 * logit_rows * c.d_model * c.vocab_size;
  return f;
}

}  // namespace mamba
