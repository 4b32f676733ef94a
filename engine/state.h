#pragma once
// The recurrent state of a Mamba-2 model after some tokens: per layer, the conv window and the SSM state.
// Its size does not grow with the number of tokens. Host-side, fp32, copyable; backends load/store it.
#include <cstdint>
#include <vector>

#include "engine/config.h"

namespace mamba {

struct LayerState {
  std::vector<float> conv;  // (conv_dim, K-1)  last K-1 inputs of xBC (before the conv), oldest first
  std::vector<float> ssm;   // (H, P, N)
};

struct State {
  std::vector<LayerState> layers;  // (L)
  int64_t n_tokens = 0;            // tokens consumed so far

  State() = default;
  explicit State(const Config& c) { reset(c); }
  void reset(const Config& c);
  bool matches(const Config& c) const;
  uint64_t bytes() const;
};

}  // namespace mamba
