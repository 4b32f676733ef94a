#pragma once
// A toy state-space layer for teaching the duality from scratch: one head, one channel (P = 1), up to 64
// tokens and 8 state dimensions, in float64. The same y three ways: the recurrence (a state vector h_t),
// the matrix (y = M x), and the chunked algorithm's four steps.
#include <cstdint>
#include <string>
#include <vector>

namespace mamba {

enum class ToyDt { Constant, Spike, Ramp, Periodic, Random };
enum class ToyBC { Random, Ones, OneHot, HandSet };
const char* toy_dt_name(ToyDt p);
const char* toy_bc_name(ToyBC p);

struct ToyParams {
  int64_t T = 24, N = 4, Q = 8;  // tokens (1..64), state size (1..8), chunk size (1..T)
  double A = -0.5;               // < 0
  double dt = 0.3;               // the base step
  ToyDt dt_pattern = ToyDt::Constant;
  int64_t spike_at = 12;  // Spike: dt is 10x there (a token the head writes in hard and forgets before)
  ToyBC bc = ToyBC::Random;
  uint64_t seed = 1;                   // Random B, C, and x
  std::vector<double> B_hand, C_hand;  // HandSet: (T, N) each
  void validate() const;               // throws mamba::Error naming the field
};

struct ToyResult {
  int64_t T = 0, N = 0, Q = 0;
  std::vector<double> dt, x;                         // (T)
  std::vector<double> decay;                         // (T) exp(dt_t A): the share of the state each token keeps
  std::vector<double> cum;                           // (T + 1) prefix sums of dt A
  std::vector<double> B, C;                          // (T, N)
  std::vector<double> M;                             // (T, T) lower-triangular
  std::vector<double> h;                             // (T, N) the recurrent state after each token
  std::vector<double> y_recurrent;                   // (T) h_t . C_t
  std::vector<double> y_matrix;                      // (T) M x
  std::vector<double> y_diag;                        // (T) chunked step 1: inside each chunk
  std::vector<double> y_off;                         // (T) chunked step 4: from the state handed in
  std::vector<double> chunk_states;                  // (nc, N) step 3: the state entering each chunk
  std::vector<double> y_chunked() const;             // y_diag + y_off
  double cb(int64_t t, int64_t s) const;             // C_t . B_s
  double decay_between(int64_t t, int64_t s) const;  // exp(sum_{k=s+1..t} dt_k A), 0 for s > t
  double max_disagreement() const;                   // largest |y_matrix - y_recurrent|, |y_chunked - y_recurrent|
};

ToyResult run_toy(const ToyParams& p);

}  // namespace mamba
