#include "engine/state_edit.h"

#include <cmath>

#include "engine/error.h"

namespace mamba {

namespace {
void check_shape(const State& s, const Config& c, const char* what) {
  if (!s.matches(c)) throw Error(std::string(what) + ": the state does not have the model's shapes");
}
void check_layer(const Config& c, int64_t layer) {
  if (layer < 0 || layer >= c.n_layer)
    throw Error("layer " + std::to_string(layer) + " is out of range (the model has " + std::to_string(c.n_layer) + ")");
}
void check_head(const Config& c, int64_t head) {
  if (head < 0 || head >= c.n_heads)
    throw Error("head " + std::to_string(head) + " is out of range (the model has " + std::to_string(c.n_heads) + ")");
}
}  // namespace

std::vector<float> state_head_norms(const State& s, const Config& c) {
  check_shape(s, c, "state norms");
  const int64_t L = c.n_layer, H = c.n_heads, PN = c.head_dim * c.d_state;
  std::vector<float> out(size_t(L * H));
  for (int64_t l = 0; l < L; ++l)
    for (int64_t h = 0; h < H; ++h) {
      const float* p = s.layers[size_t(l)].ssm.data() + h * PN;
      double acc = 0;
      for (int64_t i = 0; i < PN; ++i) acc += double(p[i]) * p[i];
      out[size_t(l * H + h)] = float(std::sqrt(acc));
    }
  return out;
}

StateDiff state_diff(const State& a, const State& b, const Config& c) {
  check_shape(a, c, "state diff");
  check_shape(b, c, "state diff");
  StateDiff d;
  d.L = c.n_layer;
  d.H = c.n_heads;
  const int64_t PN = c.head_dim * c.d_state;
  d.delta.resize(size_t(d.L * d.H));
  d.norm_a = state_head_norms(a, c);
  d.norm_b = state_head_norms(b, c);
  d.conv_delta.resize(size_t(d.L));
  for (int64_t l = 0; l < d.L; ++l) {
    const LayerState &la = a.layers[size_t(l)], &lb = b.layers[size_t(l)];
    for (int64_t h = 0; h < d.H; ++h) {
      double acc = 0;
      for (int64_t i = h * PN; i < (h + 1) * PN; ++i) {
        const double x = double(la.ssm[size_t(i)]) - lb.ssm[size_t(i)];
        acc += x * x;
      }
      d.delta[size_t(l * d.H + h)] = float(std::sqrt(acc));
    }
    double acc = 0;
    for (size_t i = 0; i < la.conv.size(); ++i) {
      const double x = double(la.conv[i]) - lb.conv[i];
      acc += x * x;
    }
    d.conv_delta[size_t(l)] = float(std::sqrt(acc));
  }
  return d;
}

void scale_head_state(State& s, const Config& c, int64_t layer, int64_t head, float factor) {
  check_shape(s, c, "scale head");
  check_layer(c, layer);
  check_head(c, head);
  if (!std::isfinite(factor)) throw Error("scale head: the factor must be a finite number");
  const int64_t PN = c.head_dim * c.d_state;
  float* p = s.layers[size_t(layer)].ssm.data() + head * PN;
  for (int64_t i = 0; i < PN; ++i) p[i] = factor == 0.f ? 0.f : p[i] * factor;
}

void copy_layer_state(State& dst, const State& src, const Config& c, int64_t layer) {
  check_shape(dst, c, "copy layer");
  check_shape(src, c, "copy layer");
  check_layer(c, layer);
  dst.layers[size_t(layer)] = src.layers[size_t(layer)];
}

}  // namespace mamba
