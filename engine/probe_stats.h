#pragma once
// What the inspection views show, computed from probe frames (engine/probes.h): one series per layer
// reduced over heads, and each head's memory — how long its state keeps what it saw.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/probes.h"

namespace mamba {

enum class ProbeMetric { Dt, Decay, StateNorm, YNorm, ResidNorm };
const char* metric_name(ProbeMetric m);   // "dt", "decay", "state_norm", "y_norm", "resid_norm"
const char* metric_label(ProbeMetric m);  // for axes: "dt", "exp(dt·A)", "‖h‖", "‖y‖", "‖r‖"
ProbeMetric parse_metric(const std::string& s);

// head >= 0: that head; kMeanOverHeads / kMaxOverHeads: the reduction over heads. ResidNorm has no heads.
constexpr int64_t kMeanOverHeads = -1, kMaxOverHeads = -2;

// (L, count) row-major: the metric per layer and position for one head or a reduction over heads.
std::vector<float> layer_series(const ProbeFrames& f, ProbeMetric m, int64_t head);

// A head's memory over the frames' positions. A token's state share left after k more tokens is
// exp(sum of the next k dt * A) — the product of the next k decays.
struct HeadMemory {
  int64_t layer = 0, head = 0;
  // Half-life in tokens: per position ln 2 / (-dt_t * A) (the lag at which the state would halve if dt
  // stayed as it is there), then the median over positions. Infinite where A = 0 or dt = 0.
  double half_life = 0;
  std::vector<double> decay_at_lag;  // [k - 1] = median over start positions t of exp(sum_{j=t+1..t+k} dt_j A)
};

// Per head of `layer`, lags 1..max_lag (bounded by the positions held, count - 1).
std::vector<HeadMemory> layer_memory(const ProbeFrames& f, int64_t layer, int64_t max_lag);
// (L, H) row-major: every head's half-life.
std::vector<double> half_lives(const ProbeFrames& f);

}  // namespace mamba
