#pragma once
// The whole Mamba-2 model in float64 on the CPU: the truth the scan comparison (engine/compare.h)
// measures the float32, bf16 and f16 paths against. The same math as the CPU backend (DESIGN.md), every
// value in double: the weights are the model's (f32, bf16 and f16 values are exact in double),
// A = -exp(A_log) is taken in double, matrix products go through dgemm. It equals transformers run in
// float64 (tests/fixtures/models) to ~1e-14; tests/test_reference.cpp holds it to 1e-12.
// Not a Backend: its state and outputs are double. Memory: the activations of the tokens of one call,
// plus one block of weights converted to double at a time.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "engine/backend.h"
#include "engine/model.h"

namespace mamba {

struct ReferenceState {
  std::vector<std::vector<double>> conv;  // (L) x (conv_dim, K-1)  last K-1 inputs of xBC, oldest first
  std::vector<std::vector<double>> ssm;   // (L) x (H, P, N)
  int64_t n_tokens = 0;
};

struct ReferenceOptions {
  ScanMode scan = ScanMode::Recurrent;  // chunked: ssd_minimal's four steps in double (agrees to ~1e-15)
  int64_t chunk_size = 0;               // 0: the model's
  bool all_logits = false;              // logits of every position (T, V), else of the last (1, V)
  // The residual stream after each layer, (T, D) row-major for positions [first, first + T), layers in order.
  std::function<void(int64_t layer, int64_t first, int64_t T, const double* r)> residual;
};

class ReferenceModel {
 public:
  // Throws when a layer's A disagrees with -exp(A_log) beyond float rounding (A_log is what it reads).
  explicit ReferenceModel(std::shared_ptr<const Model> model);

  const Model& model() const { return *m_model; }
  void reset();
  const ReferenceState& state() const { return m_state; }
  int64_t n_tokens() const { return m_state.n_tokens; }

  // Consumes `ids` from the current state; writes (T or 1, V) logits unless `logits` is null.
  void forward(std::span<const int32_t> ids, const ReferenceOptions& opt, double* logits);
  // Logits of n residual rows (n, D) -> (n, V): rmsnorm(r) * norm_f @ W_lm^T.
  void logits_of(const double* r, int64_t n, double* out) const;

 private:
  std::shared_ptr<const Model> m_model;
  std::vector<std::vector<double>> m_A;  // (L) x (H)  -exp(A_log) in double
  ReferenceState m_state;
};

// out (T, N) = x (T, K) @ W^T [+ bias], W (N, K) and bias in float, all arithmetic in double. Exposed for
// the tests; converts W to double a block of rows at a time.
void linear_f64(const double* x, int64_t T, int64_t K, const float* W, int64_t N, const float* bias, double* out);

}  // namespace mamba
