#pragma once
// An intervention on one head's step size dt (a hook researchers otherwise write in Python): for every
// token run while the edit is in place, the layer uses dt' = clamp(dt * scale, lo, hi) in the head's
// recurrence, where dt is the value after softplus and the model's time_step_limit. Scaling dt changes
// how much of the state survives a step (exp(dt A)) and how strongly the token is written into it.
#include <cmath>
#include <cstdint>
#include <span>
#include <string>

namespace mamba {

struct Config;

struct DtEdit {
  int64_t layer = 0, head = 0;
  float scale = 1.f;  // >= 0
  float lo = 0.f;     // clamp after scaling; lo <= hi
  float hi = INFINITY;
  bool operator==(const DtEdit&) const = default;
  std::string describe() const;  // e.g. "dt x0.5 in L3 H7", "dt clamped to [0, 0.01] in L0 H2"
};

// Throws mamba::Error naming the edit when a layer or head is out of range or a value is not usable.
void check_dt_edits(std::span<const DtEdit> edits, const Config& c);
// dt (T, H) dense, of `layer`: applies the edits that name that layer.
void apply_dt_edits(std::span<const DtEdit> edits, int64_t layer, float* dt, int64_t T, int64_t H);

}  // namespace mamba
