#include "engine/probe_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/error.h"

namespace mamba {

const char* metric_name(ProbeMetric m) {
  switch (m) {
    case ProbeMetric::Dt: return "dt";
    case ProbeMetric::Decay: return "decay";
    case ProbeMetric::StateNorm: return "state_norm";
    case ProbeMetric::YNorm: return "y_norm";
    case ProbeMetric::ResidNorm: return "resid_norm";
  }
  return "?";
}

const char* metric_label(ProbeMetric m) {
  switch (m) {
    case ProbeMetric::Dt: return "dt";
    case ProbeMetric::Decay: return "exp(dt·A)";
    case ProbeMetric::StateNorm: return "‖h‖";
    case ProbeMetric::YNorm: return "‖y‖";
    case ProbeMetric::ResidNorm: return "‖r‖";
  }
  return "?";
}

ProbeMetric parse_metric(const std::string& s) {
  for (ProbeMetric m : {ProbeMetric::Dt, ProbeMetric::Decay, ProbeMetric::StateNorm, ProbeMetric::YNorm, ProbeMetric::ResidNorm})
    if (s == metric_name(m)) return m;
  throw Error("unknown probe metric '" + s + "' (dt, decay, state_norm, y_norm or resid_norm)");
}

namespace {
const std::vector<float>& per_head(const ProbeFrames& f, ProbeMetric m) {
  switch (m) {
    case ProbeMetric::Dt: return f.dt;
    case ProbeMetric::Decay: return f.decay;
    case ProbeMetric::StateNorm: return f.state_norm;
    case ProbeMetric::YNorm: return f.y_norm;
    case ProbeMetric::ResidNorm: break;
  }
  throw Error("the residual norm has no heads");
}

double median(std::vector<double>& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + mid, v.end());
  if (v.size() % 2) return v[mid];
  const double hi = v[mid];
  return 0.5 * (hi + *std::max_element(v.begin(), v.begin() + mid));
}
}  // namespace

std::vector<float> layer_series(const ProbeFrames& f, ProbeMetric m, int64_t head) {
  const int64_t L = f.L, H = f.H, T = f.count;
  std::vector<float> out(static_cast<size_t>(L * T));
  if (m == ProbeMetric::ResidNorm) {
    for (int64_t l = 0; l < L; ++l)
      for (int64_t t = 0; t < T; ++t) out[l * T + t] = f.resid_norm[t * L + l];
    return out;
  }
  if (head >= H || head < kMaxOverHeads) throw Error("probe head " + std::to_string(head) + " out of range");
  const std::vector<float>& v = per_head(f, m);
  // The norms come per channel group for Mamba-1 (ProbeFrames::S): a channel reads its group's value.
  const bool grouped = (m == ProbeMetric::StateNorm || m == ProbeMetric::YNorm) && f.S > 0 && f.S != H;
  const int64_t W = grouped ? f.S : H, col = head >= 0 && grouped ? head / (H / W) : head;
  for (int64_t l = 0; l < L; ++l)
    for (int64_t t = 0; t < T; ++t) {
      const float* row = v.data() + (t * L + l) * W;
      float r;
      if (col >= 0) {
        r = row[col];
      } else if (head == kMeanOverHeads) {
        double s = 0;
        for (int64_t h = 0; h < W; ++h) s += row[h];
        r = static_cast<float>(s / double(W));
      } else {
        r = *std::max_element(row, row + W);
      }
      out[l * T + t] = r;
    }
  return out;
}

std::vector<HeadMemory> layer_memory(const ProbeFrames& f, int64_t layer, int64_t max_lag) {
  if (layer < 0 || layer >= f.L) throw Error("probe layer " + std::to_string(layer) + " out of range");
  const int64_t L = f.L, H = f.H, T = f.count;
  const int64_t lags = std::clamp<int64_t>(max_lag, 0, std::max<int64_t>(0, T - 1));
  std::vector<HeadMemory> out(static_cast<size_t>(H));
  std::vector<double> logd(static_cast<size_t>(T)), scratch;
  for (int64_t h = 0; h < H; ++h) {
    HeadMemory& hm = out[static_cast<size_t>(h)];
    hm.layer = layer;
    hm.head = h;
    // log of each position's decay, dt * A (<= 0); the half-life there is ln 2 / -(dt * A)
    for (int64_t t = 0; t < T; ++t) logd[t] = std::log(static_cast<double>(f.decay[(t * L + layer) * H + h]));
    scratch.clear();
    for (int64_t t = 0; t < T; ++t) scratch.push_back(logd[t] < 0 ? std::log(2.0) / -logd[t] : std::numeric_limits<double>::infinity());
    hm.half_life = median(scratch);
    // decay over lag k from every start t with t + k inside the frames: a running sum per start
    hm.decay_at_lag.resize(static_cast<size_t>(lags));
    std::vector<double> run(static_cast<size_t>(T), 0.0);
    for (int64_t k = 1; k <= lags; ++k) {
      scratch.clear();
      for (int64_t t = 0; t + k < T; ++t) {
        run[t] += logd[t + k];
        scratch.push_back(std::exp(run[t]));
      }
      hm.decay_at_lag[static_cast<size_t>(k - 1)] = median(scratch);
    }
  }
  return out;
}

std::vector<double> half_lives(const ProbeFrames& f) {
  std::vector<double> out;
  out.reserve(static_cast<size_t>(f.L * f.H));
  for (int64_t l = 0; l < f.L; ++l)
    for (const HeadMemory& hm : layer_memory(f, l, 0)) out.push_back(hm.half_life);
  return out;
}

}  // namespace mamba
