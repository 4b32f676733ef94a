#pragma once
// Reading and editing a State by hand, the interventions researchers otherwise run with hooks in Python:
// per-head norms, the difference between two states, zeroing or scaling one head's SSM state, and copying
// one layer's state from another. Each throws mamba::Error on a layer or head out of range or states of
// different shapes, and changes nothing then.
#include <cstdint>
#include <vector>

#include "engine/config.h"
#include "engine/state.h"

namespace mamba {

// (L, H) row-major: ||h||_F of each head's (P, N) SSM state, accumulated in double.
std::vector<float> state_head_norms(const State& s, const Config& c);

struct StateDiff {
  int64_t L = 0, H = 0;
  std::vector<float> delta;           // (L, H) ||h_a - h_b||_F per layer and head
  std::vector<float> norm_a, norm_b;  // (L, H) ||h_a||_F, ||h_b||_F
  std::vector<float> conv_delta;      // (L) ||conv_a - conv_b||_F of the layer's conv window
};
StateDiff state_diff(const State& a, const State& b, const Config& c);

// h(layer, head) *= factor (0 zeroes it). The conv window is left alone: it holds inputs, not memory.
void scale_head_state(State& s, const Config& c, int64_t layer, int64_t head, float factor);
// The whole state of `layer` (conv window and SSM state) from `src`.
void copy_layer_state(State& dst, const State& src, const Config& c, int64_t layer);

}  // namespace mamba
