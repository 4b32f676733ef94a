#pragma once
// Mamba-1's selective scan, per channel c of E and state entry n of N (docs/FORMATS.md, "Mamba-1"):
//   h_t[c,n] = exp(dt_t[c] A[c,n]) h_{t-1}[c,n] + dt_t[c] B_t[n] x_t[c]
//   y_t[c]   = sum_n h_t[c,n] C_t[n] + D[c] x_t[c]
// in two forms that agree to rounding (recurrent for decode, chunked for prefill), and the matrix
// ("hidden attention") form of one channel for display and tests. All take the initial state and leave
// the final one, so any split of a sequence gives the same result.
#include <cstdint>
#include <vector>

namespace mamba {

struct SelectiveScanArgs {
  int64_t T = 0, E = 0, N = 0;
  const float* x = nullptr;   // (T, E)  after conv + SiLU; x[t*ldx + c]
  const float* dt = nullptr;  // (T, E)  after softplus; dense
  const float* B = nullptr;   // (T, N)  B[t*ldbc + n]
  const float* C = nullptr;   // (T, N)  C[t*ldbc + n]
  const float* A = nullptr;   // (E, N)  negative
  const float* D = nullptr;   // (E)     skip, or null for none
  float* y = nullptr;         // (T, E)  written, dense: SSM output + D x (before the gate)
  float* state = nullptr;     // (E, N)  in: initial state, out: final state
  int64_t ldx = 0, ldbc = 0;
  // Probe (engine/probes.h), or null: ||h_t|| over each of `groups` consecutive groups of E/groups
  // channels, the state after token t. (T, groups) dense.
  float* state_norm = nullptr;
  int64_t groups = 1;
};

// Sequential in t, parallel over channels.
void selective_scan_recurrent(const SelectiveScanArgs& a);

// Chunks of `chunk_size` positions (>= 1; the last may be partial), parallel over chunks and channels:
// 1. each chunk scans from a zero state (its local outputs and its end state S_k), keeping the running
//    sum of dt inside the chunk;
// 2. state passing: h_in(k+1) = exp(A * sum of dt over chunk k) h_in(k) + S_k, h_in(0) = initial state;
// 3. y_t += sum_n C_t[n] exp(A[c,n] * sum of dt in the chunk up to t) h_in(k)[c,n].
// Only sums of dt inside one chunk are exponentiated, never a long running sum.
void selective_scan_chunked(const SelectiveScanArgs& a, int64_t chunk_size);

// The attention form of channel `c`: M (T, T) row-major, lower-triangular, float64,
//   M[t,s] = sum_n C_t[n] exp(A[c,n] sum_{k=s+1..t} dt_k[c]) B_s[n] dt_s[c],
// so that y[:, c] = M x[:, c] + D[c] x[:, c] from a zero state. Unlike Mamba-2's, each channel has its own
// matrix: A is diagonal (N rates per channel), not one scalar per head. Ignores a.state.
std::vector<double> mamba1_hidden_attention(const SelectiveScanArgs& a, int64_t channel);

}  // namespace mamba
