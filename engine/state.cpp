#include "engine/state.h"

namespace mamba {

void State::reset(const Config& c) {
  layers.assign(static_cast<size_t>(c.n_layer), {});
  for (auto& l : layers) {
    l.conv.assign(static_cast<size_t>(c.conv_dim * (c.d_conv - 1)), 0.f);
    l.ssm.assign(static_cast<size_t>(c.n_heads * c.head_dim * c.d_state), 0.f);
  }
  n_tokens = 0;
}

bool State::matches(const Config& c) const {
  if (layers.size() != static_cast<size_t>(c.n_layer)) return false;
  for (const auto& l : layers)
    if (l.conv.size() != static_cast<size_t>(c.conv_dim * (c.d_conv - 1)) ||
        l.ssm.size() != static_cast<size_t>(c.n_heads * c.head_dim * c.d_state))
      return false;
  return true;
}

uint64_t State::bytes() const {
  uint64_t b = 0;
  for (const auto& l : layers) b += (l.conv.size() + l.ssm.size()) * sizeof(float);
  return b;
}

}  // namespace mamba
