#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>

#include "engine/error.h"

namespace mamba {

void SamplerParams::validate() const {
  if (!(temperature >= 0.f) || !std::isfinite(temperature)) throw Error("temperature must be >= 0");
  if (top_k < 0) throw Error("top-k must be >= 0");
  if (!(top_p > 0.f && top_p <= 1.f)) throw Error("top-p must be in (0, 1]");
  if (!(min_p >= 0.f && min_p <= 1.f)) throw Error("min-p must be in [0, 1]");
  if (!(repeat_penalty > 0.f) || !std::isfinite(repeat_penalty)) throw Error("repetition penalty must be > 0");
}

namespace {
uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Sampler::Sampler(const SamplerParams& p) : m_p(p) {
  m_p.validate();
  uint64_t s = p.seed;
  for (auto& r : m_rng) r = splitmix(s);
}

void Sampler::set_params(const SamplerParams& p) {
  p.validate();
  m_p = p;
}

double Sampler::uniform() {
  const uint64_t result = rotl(m_rng[1] * 5, 7) * 9;
  const uint64_t t = m_rng[1] << 17;
  m_rng[2] ^= m_rng[0];
  m_rng[3] ^= m_rng[1];
  m_rng[1] ^= m_rng[2];
  m_rng[0] ^= m_rng[3];
  m_rng[2] ^= t;
  m_rng[3] = rotl(m_rng[3], 45);
  return double(result >> 11) * 0x1.0p-53;
}

std::string Sampler::rng_state() const {
  std::ostringstream s;
  s << m_rng[0] << ' ' << m_rng[1] << ' ' << m_rng[2] << ' ' << m_rng[3];
  return s.str();
}

void Sampler::set_rng_state(const std::string& str) {
  std::istringstream s(str);
  uint64_t r[4];
  if (!(s >> r[0] >> r[1] >> r[2] >> r[3])) throw Error("invalid sampler RNG state");
  std::copy(r, r + 4, m_rng);
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history, SampleInfo* info, int n_top) {
  const int64_t V = static_cast<int64_t>(logits.size());
  const int64_t n = m_p.n_valid > 0 ? std::min<int64_t>(m_p.n_valid, V) : V;
  if (n <= 0) throw Error("sampler: empty vocabulary");
  // NaN or Inf would make every comparison below false and print the same id forever.
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(logits[i]))
      throw Error("the model produced a non-finite logit (" + std::string(std::isnan(logits[i]) ? "NaN" : "Inf") + " for id " +
                  std::to_string(i) + "): its weights or activations overflow float32");

  // Model probabilities (softmax of the raw logits) for display: the max and normaliser are kept for the
  // chosen id, which is only known at the end.
  float info_max = 0.f;
  double info_z = 1.0;
  if (info) {
    info_max = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) info_max = std::max(info_max, logits[i]);
    info_z = 0.0;
    for (int64_t i = 0; i < n; ++i) info_z += std::exp(double(logits[i]) - info_max);
    info->top.clear();
    m_idx.resize(static_cast<size_t>(n));
    std::iota(m_idx.begin(), m_idx.end(), 0);
    const int64_t k = std::min<int64_t>(n_top, n);
    std::partial_sort(m_idx.begin(), m_idx.begin() + k, m_idx.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    for (int64_t i = 0; i < k; ++i) info->top.emplace_back(m_idx[i], float(std::exp(double(logits[m_idx[i]]) - info_max) / info_z));
  }

  m_work.assign(logits.begin(), logits.begin() + n);
  if (m_p.repeat_penalty != 1.f)
    for (int32_t id : history)
      if (id >= 0 && id < n) {
        float& v = m_work[id];
        v = v > 0 ? v / m_p.repeat_penalty : v * m_p.repeat_penalty;
      }

  int32_t chosen;
  if (m_p.temperature == 0.f) {
    chosen = static_cast<int32_t>(std::max_element(m_work.begin(), m_work.end()) - m_work.begin());
  } else {
    const float mx = *std::max_element(m_work.begin(), m_work.end());
    double z = 0.0;
    for (float& v : m_work) z += (v = float(std::exp(double(v - mx) / m_p.temperature)));
    for (float& v : m_work) v = float(v / z);
    // candidates in descending probability; only as many as the filters can keep are sorted
    m_idx.resize(static_cast<size_t>(n));
    std::iota(m_idx.begin(), m_idx.end(), 0);
    auto by_prob = [&](int32_t a, int32_t b) { return m_work[a] > m_work[b] || (m_work[a] == m_work[b] && a < b); };
    int64_t keep = n;
    if (m_p.top_k > 0) keep = std::min<int64_t>(keep, m_p.top_k);
    if (keep < n) std::partial_sort(m_idx.begin(), m_idx.begin() + keep, m_idx.end(), by_prob);
    else if (m_p.top_p < 1.f || m_p.min_p > 0.f) std::sort(m_idx.begin(), m_idx.end(), by_prob);
    if (m_p.top_p < 1.f) {
      double cum = 0.0;
      for (int64_t i = 0; i < keep; ++i) {
        cum += m_work[m_idx[i]];
        if (cum >= m_p.top_p) {
          keep = i + 1;
          break;
        }
      }
    }
    if (m_p.min_p > 0.f) {
      const float thr = m_p.min_p * m_work[m_idx[0]];
      int64_t k2 = 1;
      while (k2 < keep && m_work[m_idx[k2]] >= thr) ++k2;
      keep = k2;
    }
    double total = 0.0;
    for (int64_t i = 0; i < keep; ++i) total += m_work[m_idx[i]];
    const double r = uniform() * total;
    double cum = 0.0;
    chosen = m_idx[keep - 1];
    for (int64_t i = 0; i < keep; ++i) {
      cum += m_work[m_idx[i]];
      if (r < cum) {
        chosen = m_idx[i];
        break;
      }
    }
  }
  if (info) info->prob = float(std::exp(double(logits[chosen]) - info_max) / info_z);
  return chosen;
}

}  // namespace mamba
