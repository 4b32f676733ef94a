#include "engine/probes.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "engine/model.h"

namespace mamba {

int64_t probe_groups(const Config& c) {
  if (!c.mamba1()) return c.n_heads;
  int64_t size = 64;  // channels per group: the largest power of two up to 64 that divides E
  while (c.d_inner % size) size /= 2;
  return c.d_inner / size;
}

int64_t ProbeRecorder::default_window(int64_t L, int64_t H, int64_t S) {
  const int64_t per = bytes_per_position(std::max<int64_t>(L, 1), std::max<int64_t>(H, 1), S > 0 ? S : H);
  return std::clamp(kDefaultBytes / per, kMinWindow, kDefaultWindow);
}

int64_t ProbeRecorder::default_window(const Config& c) { return default_window(c.n_layer, c.n_heads, probe_groups(c)); }

ProbeRecorder::ProbeRecorder(const Config& c, const Weights& w, int64_t window)
    : m_L(c.n_layer), m_H(c.n_heads), m_S(probe_groups(c)), m_window(window) {
  if (window < 1) throw Error("probe window must be at least 1 position");
  m_A.reserve(static_cast<size_t>(m_L * m_H));
  if (c.mamba1()) {
    // A channel's N decays exp(dt A[c, n]) summarised by their geometric mean exp(dt mean_n A[c, n]).
    for (const Mamba1LayerWeights& lw : w.layers1)
      for (size_t e = 0; e * c.d_state < lw.A.size(); ++e) {
        double s = 0.0;
        for (int64_t n = 0; n < c.d_state; ++n) s += lw.A[e * c.d_state + n];
        m_A.push_back(static_cast<float>(s / double(c.d_state)));
      }
  } else {
    for (const LayerWeights& lw : w.layers) m_A.insert(m_A.end(), lw.A.begin(), lw.A.end());
  }
  if (m_A.size() != static_cast<size_t>(m_L * m_H)) throw Error("probe recorder: the weights do not match the config");
}

float* ProbeRecorder::slot(int64_t pos) { return m_ring.data() + (pos % m_window) * m_L * stride(); }
const float* ProbeRecorder::slot(int64_t pos) const { return m_ring.data() + (pos % m_window) * m_L * stride(); }

void ProbeRecorder::layer(const LayerProbe& p) {
  if (p.layer < 0 || p.layer >= m_L || p.H != m_H || p.groups() != m_S || p.T < 0 || p.first < 0)
    throw Error("probe: a layer record does not match the model");
  if (p.T == 0) return;
  const int64_t stop = p.first + p.T;
  if (p.layer == 0 && p.first < m_end) truncate(p.first);  // the sequence was cut back and runs again
  const int64_t stride = m_L * this->stride();
  const int64_t need = std::min(m_window, stop);
  if (static_cast<int64_t>(m_ring.size()) < need * stride)
    m_ring.resize(static_cast<size_t>(std::min(m_window, std::max(need, 2 * static_cast<int64_t>(m_ring.size()) / stride)) * stride));
  // Only the newest `window` positions of a long prompt are kept.
  for (int64_t t = std::max<int64_t>(0, p.T - m_window); t < p.T; ++t) {
    float* s = slot(p.first + t) + p.layer * this->stride();
    std::copy_n(p.dt + t * m_H, m_H, s);
    std::copy_n(p.state_norm + t * m_S, m_S, s + m_H);
    std::copy_n(p.y_norm + t * m_S, m_S, s + m_H + m_S);
    s[m_H + 2 * m_S] = p.resid_norm[t];
  }
  if (p.layer + 1 < m_L) return;
  m_held = p.first == m_end ? std::min(m_window, m_held + p.T) : std::min(m_window, p.T);
  m_end = stop;
}

ProbeFrames ProbeRecorder::frames(int64_t from, int64_t to) const {
  ProbeFrames f;
  f.L = m_L;
  f.H = m_H;
  f.S = m_S;
  from = std::max(from, begin());
  to = std::min(to, end());
  f.first = from;
  f.count = std::max<int64_t>(0, to - from);
  const size_t n = static_cast<size_t>(f.count * m_L * m_H), ns = static_cast<size_t>(f.count * m_L * m_S);
  f.dt.resize(n);
  f.decay.resize(n);
  f.state_norm.resize(ns);
  f.y_norm.resize(ns);
  f.resid_norm.resize(static_cast<size_t>(f.count * m_L));
  for (int64_t t = 0; t < f.count; ++t) {
    const float* s = slot(from + t);
    for (int64_t l = 0; l < m_L; ++l) {
      const float* sl = s + l * stride();
      const int64_t o = (t * m_L + l) * m_H, os = (t * m_L + l) * m_S;
      for (int64_t h = 0; h < m_H; ++h) {
        f.dt[o + h] = sl[h];
        f.decay[o + h] = std::exp(sl[h] * m_A[l * m_H + h]);
      }
      for (int64_t g = 0; g < m_S; ++g) {
        f.state_norm[os + g] = sl[m_H + g];
        f.y_norm[os + g] = sl[m_H + m_S + g];
      }
      f.resid_norm[t * m_L + l] = sl[m_H + 2 * m_S];
    }
  }
  return f;
}

void ProbeRecorder::truncate(int64_t pos) {
  if (pos >= m_end) return;
  m_held = std::max<int64_t>(0, pos - begin());
  m_end = std::max<int64_t>(0, pos);
}

void ProbeRecorder::clear() {
  m_end = 0;
  m_held = 0;
  m_ring.clear();
  m_ring.shrink_to_fit();
}

}  // namespace mamba
