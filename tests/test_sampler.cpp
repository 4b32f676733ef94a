#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/error.h"
#include "engine/sampler.h"

using namespace mamba;

namespace {
std::vector<float> logits_fixture() { return {1.0f, 3.0f, 2.5f, -1.0f, 0.0f, 2.9f}; }
}  // namespace

TEST(Sampler, GreedyIsArgmax) {
  SamplerParams p;
  p.temperature = 0;
  Sampler s(p);
  SampleInfo info;
  EXPECT_EQ(s.sample(logits_fixture(), {}, &info, 3), 1);
  ASSERT_EQ(info.top.size(), 3u);
  EXPECT_EQ(info.top[0].first, 1);
  EXPECT_EQ(info.top[1].first, 5);
  EXPECT_EQ(info.top[2].first, 2);
  EXPECT_FLOAT_EQ(info.prob, info.top[0].second);
  double z = 0;
  for (float v : logits_fixture()) z += std::exp(v - 3.0);
  EXPECT_NEAR(info.prob, 1.0 / z, 1e-6);
}

TEST(Sampler, SameSeedSameSequence) {
  SamplerParams p;
  p.temperature = 1.5f;
  p.seed = 99;
  Sampler a(p), b(p);
  std::vector<int32_t> sa, sb;
  for (int i = 0; i < 200; ++i) {
    sa.push_back(a.sample(logits_fixture(), {}));
    sb.push_back(b.sample(logits_fixture(), {}));
  }
  EXPECT_EQ(sa, sb);
  p.seed = 100;
  Sampler c(p);
  std::vector<int32_t> sc;
  for (int i = 0; i < 200; ++i) sc.push_back(c.sample(logits_fixture(), {}));
  EXPECT_NE(sa, sc);
}

TEST(Sampler, FrequenciesFollowSoftmax) {
  SamplerParams p;
  p.temperature = 1.f;
  Sampler s(p);
  std::map<int32_t, int> count;
  const int n = 40000;
  for (int i = 0; i < n; ++i) ++count[s.sample(logits_fixture(), {})];
  auto l = logits_fixture();
  double z = 0;
  for (float v : l) z += std::exp(v);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(count[i] / double(n), std::exp(l[i]) / z, 0.01) << i;
}

TEST(Sampler, TopKTopPMinP) {
  SamplerParams p;
  p.temperature = 1.f;
  p.top_k = 2;
  Sampler k(p);
  for (int i = 0; i < 500; ++i) {
    int32_t id = k.sample(logits_fixture(), {});
    EXPECT_TRUE(id == 1 || id == 5) << id;
  }
  p.top_k = 0;
  p.top_p = 0.3f;  // the top token alone has p ~ 0.37
  Sampler tp(p);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(tp.sample(logits_fixture(), {}), 1);
  p.top_p = 1.f;
  p.min_p = 0.8f;  // keeps tokens with p >= 0.8 p_max: ids 1 (3.0) and 5 (2.9, ratio 0.905), not 2 (ratio 0.61)
  Sampler mp(p);
  for (int i = 0; i < 500; ++i) {
    int32_t id = mp.sample(logits_fixture(), {});
    EXPECT_TRUE(id == 1 || id == 5) << id;
  }
}

TEST(Sampler, RepetitionPenaltyAndValidIds) {
  SamplerParams p;
  p.temperature = 0;
  p.repeat_penalty = 2.f;  // 3.0 -> 1.5 for id 1, so id 5 (2.9) wins
  Sampler s(p);
  std::vector<int32_t> hist = {1};
  EXPECT_EQ(s.sample(logits_fixture(), hist), 5);
  p.repeat_penalty = 1.f;
  p.n_valid = 1;  // only id 0 may be sampled (padded vocab)
  Sampler v(p);
  EXPECT_EQ(v.sample(logits_fixture(), {}), 0);
}

TEST(Sampler, RngStateRoundTrip) {
  SamplerParams p;
  p.temperature = 1.f;
  Sampler a(p);
  a.sample(logits_fixture(), {});
  Sampler b(p);
  b.set_rng_state(a.rng_state());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(a.sample(logits_fixture(), {}), b.sample(logits_fixture(), {}));
  EXPECT_THROW(b.set_rng_state("garbage"), Error);
}

TEST(Sampler, RejectsBadParams) {
  SamplerParams p;
  p.top_p = 0;
  EXPECT_THROW(Sampler{p}, Error);
  p = {};
  p.temperature = -1;
  EXPECT_THROW(Sampler{p}, Error);
  p = {};
  p.repeat_penalty = 0;
  EXPECT_THROW(Sampler{p}, Error);
}
