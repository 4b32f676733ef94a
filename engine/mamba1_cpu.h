#pragma once
// Mamba-1 on the CPU: float32, OpenMP across channels, GEMMs through BLAS. One layer:
//   xz = rmsnorm(r) @ W_in^T                      (T, 2E)   x | z
//   x  = silu(causal_conv1d(x))                   (T, E)    depthwise, left-padded with the conv state
//   dbc = x @ W_x^T                               (T, R+2N) dt_low | B | C
//   dt = softplus(dt_low @ W_dt^T + b_dt)         (T, E)
//   y  = selective_scan(x, dt, A, B, C) + D x     (T, E)    engine/mamba1_scan.h
//   r  = r + (y * silu(z)) @ W_out^T              (T, D)
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/backend.h"

namespace mamba {

std::unique_ptr<Backend> make_mamba1_cpu_backend(std::shared_ptr<const Model> model, const BackendOptions& opt);

// What one layer's scan saw for a sequence run from an empty state: the inputs of the hidden-attention
// matrix (engine/mamba1_scan.h, mamba1_hidden_attention).
struct Mamba1LayerTrace {
  int64_t layer = 0, T = 0, E = 0, N = 0;
  std::vector<float> x;   // (T, E) after conv + SiLU
  std::vector<float> dt;  // (T, E)
  std::vector<float> B;   // (T, N)
  std::vector<float> C;   // (T, N)
  std::vector<float> A;   // (E, N)
  std::vector<float> D;   // (E)
  std::vector<float> y;   // (T, E) the layer's scan output + D x, before the gate
};

// Runs `ids` through layers 0..layer of a Mamba-1 model (CPU, recurrent scan) and returns that layer's
// scan inputs and output. Throws for a Mamba-2 model or a layer out of range.
Mamba1LayerTrace trace_mamba1_layer(const Model& model, std::span<const int32_t> ids, int64_t layer);

// The hidden-attention matrix of `channel` in `layer` for `ids`: (T, T) row-major, float64, lower-
// triangular; y[:, channel] = M x[:, channel] + D x[:, channel] (Mamba1LayerTrace).
std::vector<double> mamba1_layer_attention(const Model& model, std::span<const int32_t> ids, int64_t layer, int64_t channel);

}  // namespace mamba
