// What the device sampler reports with an id (the app's generation path): the id's probability and its
// alternatives, against a softmax of the same logits recomputed here in double and against the host sampler's
// SampleInfo; chains report what single steps report, bit for bit; decode() with reports equals the host loop.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "engine/backend.h"
#include "engine/sampler.h"
#include "engine/session.h"
#include "kernels/cuda_backend_impl.h"
#include "tests/cuda/cuda_models.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_util.h"

using namespace mamba;
using namespace mamba::test;

namespace {

// softmax(logits[0, n)) in double: the `k` most probable ids (larger logit first, lower id on ties) and each
// id's probability.
struct Softmax {
  std::vector<double> p;
  std::vector<int32_t> top;
};
Softmax softmax_ref(const std::vector<float>& logits, int64_t n, int k) {
  Softmax s;
  const double mx = *std::max_element(logits.begin(), logits.begin() + n);
  double z = 0;
  s.p.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) z += (s.p[size_t(i)] = std::exp(double(logits[size_t(i)]) - mx));
  for (double& v : s.p) v /= z;
  std::vector<int32_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
  });
  s.top.assign(idx.begin(), idx.begin() + k);
  return s;
}

void expect_close(double got, double want, const std::string& what) {
  EXPECT_LE(std::abs(got - want), 1e-5 * std::abs(want) + 1e-8) << what << ": " << got << " vs " << want;
}

// `info` reports id `id` from `logits` as the host sampler would (n valid ids, top_n alternatives).
void expect_report(const SampleInfo& info, int32_t id, const std::vector<float>& logits, int64_t n, int top_n) {
  const Softmax ref = softmax_ref(logits, n, top_n);
  ASSERT_LT(id, n);
  expect_close(info.prob, ref.p[size_t(id)], "prob of id " + std::to_string(id));
  ASSERT_EQ(info.top.size(), size_t(top_n));
  for (int k = 0; k < top_n; ++k) {
    EXPECT_EQ(info.top[size_t(k)].first, ref.top[size_t(k)]) << "alternative " << k;
    expect_close(info.top[size_t(k)].second, ref.p[size_t(ref.top[size_t(k)])], "alternative " + std::to_string(k));
  }
}

}  // namespace

// Single steps and the first id from the prefill's logits, greedy and sampled, with a vocabulary cut short
// (n_valid): every report against the softmax of the logits a twin backend computes from the same inputs
// (the logits graph and the sampling graph run the same kernels), greedy ids against the host sampler's.
TEST_F(CudaTest, DeviceReportMatchesSoftmaxAndHostSampler) {
  for (const auto& m : {medium(1), wide(2)}) {
    const int64_t V = m->config.vocab_size;
    const auto prompt = random_ids(20, V, 31);
    for (const char* dt : {"f32", "bf16"})
      for (float temp : {0.f, 0.8f}) {
        SCOPED_TRACE(std::string(m->config.d_model == 768 ? "wide g=2 " : "medium g=1 ") + dt + " temperature " + std::to_string(temp));
        auto ap = gpu(m, dt), bp = gpu(m, dt);
        auto& a = dynamic_cast<CudaBackend&>(*ap);
        auto& b = dynamic_cast<CudaBackend&>(*bp);
        ForwardOptions fo;
        std::vector<float> logits(static_cast<size_t>(V));
        a.forward(prompt, fo, logits.data());
        b.forward(prompt, fo, nullptr);
        SamplerParams sp;
        sp.temperature = temp;
        sp.n_valid = V - 7;
        Sampler host(sp);
        const int top_n = 16;
        SampleInfo info, hinfo;
        int32_t id = b.sample_last(sp, 0.3, &info, top_n).value();
        expect_report(info, id, logits, sp.n_valid, top_n);
        for (int i = 0; i < 12; ++i) {
          if (temp == 0.f) {
            EXPECT_EQ(host.sample(logits, {}, &hinfo, top_n), id) << "step " << i;
            expect_close(info.prob, hinfo.prob, "host sampler's prob");
            for (int k = 0; k < top_n; ++k) EXPECT_EQ(info.top[size_t(k)].first, hinfo.top[size_t(k)].first);
          }
          a.step(id, logits.data());
          id = b.step_sample(id, sp, (i + 0.5) / 12.0, &info, top_n).value();
          expect_report(info, id, logits, sp.n_valid, top_n);
        }
        // fewer alternatives: the first ones
        const int32_t id2 = b.step_sample(id, sp, 0.5, &info, 3).value();
        a.step(id, logits.data());
        expect_report(info, id2, logits, sp.n_valid, 3);
      }
  }
}

// Chains with reports (and without) give the ids and reports of single steps bit for bit, greedy and sampled,
// with a stop id halting the chain where it is sampled.
TEST_F(CudaTest, DecodeChainReportsEqualSingleSteps) {
  const int L = 8, M = 2 * L + 3;
  for (const auto& m : {medium(1), wide(2)}) {
    const int64_t V = m->config.vocab_size;
    const auto prompt = random_ids(20, V, 32);
    for (float temp : {0.f, 0.9f}) {
      SCOPED_TRACE(std::string(m->config.d_model == 768 ? "wide g=2" : "medium g=1") + " temperature " + std::to_string(temp));
      SamplerParams sp;
      sp.temperature = temp;
      sp.top_p = temp > 0 ? 0.9f : 1.f;
      std::vector<double> u(static_cast<size_t>(M + L));
      std::mt19937 rng(5);
      for (double& x : u) x = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
      auto fresh = [&] {
        auto bp = gpu(m, "bf16");
        ForwardOptions fo;
        bp->forward(prompt, fo, nullptr);
        return bp;
      };
      auto rp = fresh();
      auto& r = dynamic_cast<CudaBackend&>(*rp);
      std::vector<int32_t> want;
      std::vector<SampleInfo> want_info;
      int32_t tok = prompt.back();
      for (int i = 0; i < M; ++i) {
        SampleInfo info;
        tok = r.step_sample(tok, sp, u[size_t(i)], &info, 10).value();
        want.push_back(tok);
        want_info.push_back(info);
      }
      auto cp = fresh();
      auto& c = dynamic_cast<CudaBackend&>(*cp);
      c.set_decode_chain(L);
      ASSERT_EQ(c.decode_chain(), L) << c.decode_layer_plan().why;
      std::vector<int32_t> got;
      std::vector<SampleInfo> got_info, infos;
      tok = prompt.back();
      for (int i = 0; i < M;) {
        const int n = std::min(L, M - i);
        const auto ids = c.step_sample_chain(tok, sp, std::span<const double>(u.data() + i, size_t(n)), {}, &infos, 10);
        ASSERT_EQ(ids.size(), size_t(n));
        ASSERT_EQ(infos.size(), ids.size());
        got.insert(got.end(), ids.begin(), ids.end());
        got_info.insert(got_info.end(), infos.begin(), infos.end());
        tok = ids.back();
        i += n;
      }
      EXPECT_EQ(got, want);
      ASSERT_EQ(got_info.size(), want_info.size());
      for (size_t k = 0; k < got_info.size(); ++k) {
        EXPECT_EQ(got_info[k].prob, want_info[k].prob) << "id " << k;
        EXPECT_EQ(got_info[k].top, want_info[k].top) << "id " << k;
      }
      // a stop id halts the reporting chain where it is sampled
      const int32_t stop_id = want[5];
      const size_t first_stop = size_t(std::find(want.begin(), want.end(), stop_id) - want.begin());
      auto hp = fresh();
      auto& h = dynamic_cast<CudaBackend&>(*hp);
      h.set_decode_chain(L);
      const std::vector<int32_t> stop = {stop_id};
      std::vector<int32_t> halted;
      tok = prompt.back();
      for (size_t i = 0; halted.empty() || halted.back() != stop_id;) {
        const auto ids = h.step_sample_chain(tok, sp, std::span<const double>(u.data() + i, size_t(L)), stop, &infos, 10);
        ASSERT_EQ(infos.size(), ids.size());
        halted.insert(halted.end(), ids.begin(), ids.end());
        tok = ids.back();
        i += ids.size();
        ASSERT_LE(halted.size(), first_stop + 1);
      }
      EXPECT_EQ(halted, std::vector<int32_t>(want.begin(), want.begin() + long(first_stop) + 1));
      EXPECT_EQ(infos.back().top, want_info[first_stop].top);
    }
  }
}

// decode() with probabilities and alternatives runs on the device (chains, single steps) and reports what the
// host loop over the same backend's logits reports: the same ids (greedy), the same alternatives, probabilities
// to float rounding. The Session's generation takes that path.
TEST_F(CudaTest, DecodeWithReportsEqualsHostLoop) {
  auto m = medium(1);
  const int64_t V = m->config.vocab_size;
  const auto prompt = random_ids(30, V, 33);
  DecodeRequest req;
  req.steps = 45;  // chains of 8 and single steps
  req.prob = true;
  req.top_n = 10;
  SamplerParams sp;
  sp.temperature = 0;
  auto run = [&](bool host) {
    auto bp = gpu(m, "f32");
    auto& b = dynamic_cast<CudaBackend&>(*bp);
    b.set_decode_chain(8);
    ForwardOptions fo;
    b.forward(prompt, fo, nullptr);
    Sampler s(sp);
    std::vector<DecodedToken> out;
    auto cb = [&](const DecodedToken& d) {
      out.push_back(d);
      return true;
    };
    const int64_t n = host ? b.Backend::decode(req, s, {}, cb) : b.decode(req, s, {}, cb);
    EXPECT_EQ(n, req.steps);
    return out;
  };
  const auto dev = run(false), host = run(true);
  ASSERT_EQ(dev.size(), host.size());
  for (size_t i = 0; i < dev.size(); ++i) {
    ASSERT_EQ(dev[i].id, host[i].id) << "token " << i;
    expect_close(dev[i].info.prob, host[i].info.prob, "prob of token " + std::to_string(i));
    ASSERT_EQ(dev[i].info.top.size(), 10u);
    for (size_t k = 0; k < 10; ++k) {
      EXPECT_EQ(dev[i].info.top[k].first, host[i].info.top[k].first) << "token " << i << " alternative " << k;
      expect_close(dev[i].info.top[k].second, host[i].info.top[k].second, "token " + std::to_string(i));
    }
  }
  // the Session with the GUI's request: the same ids and reports
  Session s(gpu(m, "f32"));
  dynamic_cast<CudaBackend&>(s.backend()).set_decode_chain(8);
  GenerateOptions go;
  go.sampling.temperature = 0;
  go.stop_at_eos = false;
  go.max_new_tokens = req.steps + 1;
  go.top_alternatives = 10;
  std::vector<TokenEvent> ev;
  s.generate(prompt, go, [&](const TokenEvent& e) { ev.push_back(e); });
  ASSERT_EQ(ev.size(), size_t(req.steps + 1));
  for (size_t i = 0; i < dev.size(); ++i) {
    EXPECT_EQ(ev[i].id, dev[i].id);
    EXPECT_EQ(ev[i].info.top, dev[i].info.top);
  }
}
