#pragma once
// Turns logits into the next token id: repetition penalty, temperature, top-k, top-p, min-p.
#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace mamba {

struct SamplerParams {
  float temperature = 0.8f;    // 0 = greedy
  int top_k = 0;               // 0 = off
  float top_p = 1.f;           // 1 = off
  float min_p = 0.f;           // 0 = off; keep tokens with p >= min_p * p_max
  float repeat_penalty = 1.f;  // 1 = off; HF rule: logit > 0 ? logit / r : logit * r, over the whole history
  uint64_t seed = 1;
  int64_t n_valid = -1;   // ids >= n_valid are never sampled (padded vocab); -1 = all
  void validate() const;  // throws mamba::Error on out-of-range values
};

struct SampleInfo {
  float prob = 0.f;                            // model probability of the chosen id (softmax of raw logits)
  std::vector<std::pair<int32_t, float>> top;  // top alternatives by model probability, best first
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // `history`: tokens so far (for the repetition penalty). `n_top`: how many alternatives to report in info.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history, SampleInfo* info = nullptr, int n_top = 0);
  const SamplerParams& params() const { return m_p; }
  void set_params(const SamplerParams& p);     // new settings; the generator goes on where it is (no reseed)
  double next_uniform() { return uniform(); }  // one draw in [0, 1), for samplers that run on a device
  std::string rng_state() const;               // serialisable, for snapshots
  void set_rng_state(const std::string& s);
  std::array<uint64_t, 4> rng() const { return {m_rng[0], m_rng[1], m_rng[2], m_rng[3]}; }
  void set_rng(const std::array<uint64_t, 4>& r) { std::copy(r.begin(), r.end(), m_rng); }

 private:
  double uniform();
  SamplerParams m_p;
  uint64_t m_rng[4];  // xoshiro256**: portable and reproducible across standard libraries
  std::vector<float> m_work;
  std::vector<int32_t> m_idx;
};

}  // namespace mamba
