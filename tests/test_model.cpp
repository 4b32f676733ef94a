#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/json_lenient.h"
#include "engine/session.h"
#include "tests/test_util.h"

using namespace mamba;
using namespace mamba::test;
namespace fs = std::filesystem;

TEST(Model, ChunkedEqualsRecurrent) {
  for (int64_t g : {1, 2})
    for (int64_t k : {2, 3, 4}) {
      auto m = tiny_model(g, k);
      auto b = make_cpu_backend(m);
      auto ids = random_ids(29, m->config.vocab_size, 1);
      auto rec = all_logits(*b, ids, ScanMode::Recurrent);
      State s_rec = b->get_state();
      for (int64_t Q : {0, 1, 5, 64}) {
        b->reset_state();
        auto chk = all_logits(*b, ids, ScanMode::Chunked, Q);
        const int64_t V = m->config.vocab_size;
        for (size_t t = 0; t < ids.size(); ++t)
          EXPECT_LT(test::rel_err(chk.data() + t * V, rec.data() + t * V, V), 1e-5) << "g=" << g << " k=" << k << " Q=" << Q << " t=" << t;
        State s = b->get_state();
        for (size_t l = 0; l < s.layers.size(); ++l) {
          EXPECT_LT(test::rel_err(s.layers[l].ssm.data(), s_rec.layers[l].ssm.data(), s.layers[l].ssm.size()), 1e-5);
          // layer 0's conv window is the embedding itself; deeper ones differ by the scans' rounding
          if (l == 0) {
            EXPECT_EQ(s.layers[l].conv, s_rec.layers[l].conv);
          }
          EXPECT_LT(test::rel_err(s.layers[l].conv.data(), s_rec.layers[l].conv.data(), s.layers[l].conv.size()), 1e-5);
        }
      }
    }
}

TEST(Model, PrefillThenStepEqualsLongerPrefill) {
  auto m = tiny_model(2);
  const int64_t V = m->config.vocab_size;
  auto ids = random_ids(22, V, 2);
  auto b = make_cpu_backend(m);
  auto full = all_logits(*b, ids, ScanMode::Chunked);
  for (int64_t T : {1, 2, 3, 8, 21}) {  // T < K-1, T = K-1, T = chunk, partial chunks
    b->reset_state();
    std::vector<int32_t> head(ids.begin(), ids.begin() + T);
    std::vector<float> logits(V);
    ForwardOptions fo;
    b->forward(head, fo, logits.data());
    EXPECT_LT(test::rel_err(logits.data(), full.data() + (T - 1) * V, V), 1e-5);
    for (int64_t t = T; t < static_cast<int64_t>(ids.size()); ++t) {
      b->step(ids[t], logits.data());
      EXPECT_LT(test::rel_err(logits.data(), full.data() + t * V, V), 1e-5) << "prefill " << T << " then step to " << t;
    }
    EXPECT_EQ(b->n_tokens(), static_cast<int64_t>(ids.size()));
  }
}

TEST(Model, StateRoundTripContinuesExactly) {
  auto m = tiny_model(1);
  const int64_t V = m->config.vocab_size;
  auto ids = random_ids(12, V, 3);
  auto b = make_cpu_backend(m);
  std::vector<float> a(V), c(V);
  ForwardOptions fo;
  b->forward(ids, fo, a.data());
  State snap = b->get_state();
  b->step(7, a.data());
  b->reset_state();
  b->set_state(snap);
  b->step(7, c.data());
  EXPECT_EQ(a, c);
  State wrong(test::tiny_config(2));
  wrong.layers.pop_back();
  EXPECT_THROW(b->set_state(wrong), Error);
}

TEST(Model, RejectsOutOfRangeTokensWithoutTouchingState) {
  auto b = make_cpu_backend(tiny_model(1));
  EXPECT_EQ(bad_ids_problem(*b), "");
}

TEST(Session, GenerateIsDeterministicAndContinues) {
  auto m = tiny_model(1);
  GenerateOptions go;
  go.max_new_tokens = 10;
  go.sampling.temperature = 1.0f;
  go.sampling.seed = 42;
  go.stop_at_eos = false;
  std::vector<int32_t> prompt = {3, 4, 5};
  Session a(make_cpu_backend(m)), b(make_cpu_backend(m));
  auto ra = a.generate(prompt, go), rb = b.generate(prompt, go);
  EXPECT_EQ(ra.ids, rb.ids);
  EXPECT_EQ(ra.ids.size(), 10u);
  EXPECT_EQ(a.tokens().size(), 13u);

  // greedy in two calls (continue) equals greedy in one call
  go.sampling.temperature = 0;
  Session c(make_cpu_backend(m)), d(make_cpu_backend(m));
  auto one = c.generate(prompt, go);
  go.max_new_tokens = 4;
  auto first = d.generate(prompt, go);
  go.max_new_tokens = 6;
  auto second = d.generate({}, go);
  first.ids.insert(first.ids.end(), second.ids.begin(), second.ids.end());
  EXPECT_EQ(one.ids, first.ids);
}

TEST(Session, CancelStopsGeneration) {
  auto m = tiny_model(1);
  Session s(make_cpu_backend(m));
  std::atomic<bool> cancel{false};
  GenerateOptions go;
  go.max_new_tokens = 1000;
  go.stop_at_eos = false;
  std::vector<int32_t> prompt = {1};
  int seen = 0;
  auto r = s.generate(
      prompt, go,
      [&](const TokenEvent&) {
        if (++seen == 5) cancel = true;
      },
      &cancel);
  EXPECT_EQ(r.ids.size(), 5u);
  EXPECT_EQ(r.stop_reason, "cancelled");
}

namespace {
// A backend that "samples on its device" (greedy, on the CPU's logits) and can chain steps: what Session
// needs from a GPU backend, so its chain bookkeeping (pending token, eos, state) is checked without one.
class ChainingBackend final : public Backend {
 public:
  ChainingBackend(std::shared_ptr<const Model> m, int chain) : m_cpu(make_cpu_backend(std::move(m))), m_chain(chain) {
    m_logits.resize(static_cast<size_t>(m_cpu->model().config.vocab_size));
  }
  std::string name() const override { return "chaining test backend"; }
  const Model& model() const override { return m_cpu->model(); }
  void reset_state() override { m_cpu->reset_state(); }
  void set_state(const State& s) override { m_cpu->set_state(s); }
  State get_state() const override { return m_cpu->get_state(); }
  int64_t n_tokens() const override { return m_cpu->n_tokens(); }
  void forward(std::span<const int32_t> t, const ForwardOptions& o, float* logits) override {
    m_cpu->forward(t, o, m_logits.data());
    if (logits) std::copy(m_logits.begin(), m_logits.end(), logits);
  }
  void step(int32_t token, float* logits, ProbeSink* p) override {
    m_cpu->step(token, m_logits.data(), p);
    if (logits) std::copy(m_logits.begin(), m_logits.end(), logits);
  }
  uint64_t weight_bytes() const override { return m_cpu->weight_bytes(); }
  bool samples_on_device() const override { return true; }
  std::optional<int32_t> sample_last(const SamplerParams&, double) override { return argmax(); }
  std::optional<int32_t> step_sample(int32_t token, const SamplerParams&, double) override {
    step(token, nullptr, nullptr);
    return argmax();
  }
  int decode_chain() const override { return m_chain; }
  std::vector<int32_t> step_sample_chain(int32_t token, const SamplerParams& sp, std::span<const double> u,
                                         std::span<const int32_t> stop) override {
    if (u.empty() || u.size() > size_t(m_chain)) throw Error("bad chain length");
    ++chains;
    std::vector<int32_t> ids;
    for (size_t k = 0; k < u.size(); ++k) {
      ids.push_back(*step_sample(k ? ids.back() : token, sp, u[k]));
      if (std::find(stop.begin(), stop.end(), ids.back()) != stop.end()) break;
    }
    return ids;
  }
  int chains = 0;

 private:
  int32_t argmax() const { return static_cast<int32_t>(std::max_element(m_logits.begin(), m_logits.end()) - m_logits.begin()); }
  std::unique_ptr<Backend> m_cpu;
  int m_chain;
  std::vector<float> m_logits;
};
}  // namespace

// Session::generate through a backend that chains steps on its device: the same ids, eos stop, state,
// pending token and continuation as one step per call, whole chains only while enough tokens remain.
TEST(Session, ChainedDecodeMatchesSingleSteps) {
  auto m = tiny_model(1);
  const std::vector<int32_t> prompt = {3, 4, 5};
  GenerateOptions go;
  go.sampling.temperature = 0;
  go.stop_at_eos = false;
  go.max_new_tokens = 15;
  auto make = [&](int chain) {
    auto b = std::make_unique<ChainingBackend>(m, chain);
    ChainingBackend* raw = b.get();
    return std::make_pair(std::make_unique<Session>(std::move(b)), raw);
  };
  auto [s1, b1] = make(0);
  auto [s4, b4] = make(4);
  const auto want = s1->generate(prompt, go), got = s4->generate(prompt, go);
  EXPECT_EQ(got.ids, want.ids);
  EXPECT_EQ(b4->chains, 3);  // tokens 1..12 in chains of 4, then 13 and 14 one at a time (token 0: sample_last)
  EXPECT_EQ(s4->pending(), s1->pending());
  EXPECT_EQ(s4->state().layers[0].ssm, s1->state().layers[0].ssm);
  // continuing after a chain
  go.max_new_tokens = 9;
  EXPECT_EQ(s4->generate({}, go).ids, s1->generate({}, go).ids);
  EXPECT_EQ(s4->tokens(), s1->tokens());
  // eos inside a chain: the same stop, and the same state (eos sampled, not fed)
  auto [e1, c1] = make(0);
  auto [e4, c4] = make(4);
  go.max_new_tokens = 15;
  go.stop_at_eos = true;
  go.eos_id = want.ids[6];
  const auto a = e1->generate(prompt, go), b = e4->generate(prompt, go);
  EXPECT_EQ(b.ids, a.ids);
  EXPECT_EQ(b.stop_reason, "eos");
  EXPECT_EQ(e4->pending(), e1->pending());
  EXPECT_EQ(e4->state().layers[0].ssm, e1->state().layers[0].ssm);
  EXPECT_EQ(e4->tokens(), e1->tokens());
}

// ---- the committed float64 references made by tools/make_fixtures.py with transformers ----------

TEST(Fixtures, LogitsMatchFloat64Reference) {
  const auto dirs = test::model_fixture_dirs();
  ASSERT_GE(dirs.size(), 6u) << "the reference fixtures are missing";
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    const auto ref = test::load_model_reference(dir);
    auto m = Model::load(dir.string());
    const int64_t V = m->config.vocab_size, T = static_cast<int64_t>(ref.input_ids.size());
    ASSERT_EQ(ref.logits.size(), static_cast<size_t>(T * V));
    for (ScanMode scan : {ScanMode::Chunked, ScanMode::Recurrent}) {
      auto b = make_cpu_backend(m);
      EXPECT_LE(test::worst_row_err(all_logits(*b, ref.input_ids, scan), ref.logits, T, V), 1e-4) << scan_name(scan);
    }
    // decode path, numerically: prefill then one step per greedy token, each row against transformers' cache path
    if (!ref.decode_logits.empty()) {
      auto b = make_cpu_backend(m);
      const int64_t n = static_cast<int64_t>(ref.greedy_ids.size());
      ASSERT_EQ(ref.decode_logits.size(), static_cast<size_t>(n * V));
      std::vector<float> got(static_cast<size_t>(n * V));
      b->forward(ref.input_ids, ForwardOptions{}, got.data());
      for (int64_t k = 1; k < n; ++k) b->step(ref.greedy_ids[k - 1], got.data() + k * V);
      EXPECT_LE(test::worst_row_err(got, ref.decode_logits, n, V), 1e-4) << "decode";
    }
    // greedy continuation through the session (prefill + steps) equals transformers' generate
    Session s(make_cpu_backend(m));
    GenerateOptions go;
    go.sampling.temperature = 0;
    go.stop_at_eos = false;
    go.max_new_tokens = static_cast<int64_t>(ref.greedy_ids.size());
    EXPECT_EQ(s.generate(ref.input_ids, go).ids, ref.greedy_ids);
  }
}

TEST(Fixtures, MutatedReferenceFails) {
  // The comparison must be able to fail: perturb one weight slightly and the tolerance must trip.
  const auto dirs = test::model_fixture_dirs();
  ASSERT_FALSE(dirs.empty());
  const auto ref = test::load_model_reference(dirs[0]);
  auto m = std::const_pointer_cast<Model>(Model::load(dirs[0].string()));
  for (float& v : m->weights.layers[0].out_proj) v *= 1.01f;
  auto b = make_cpu_backend(m);
  const auto got = all_logits(*b, ref.input_ids, ScanMode::Chunked);
  EXPECT_GT(test::worst_row_err(got, ref.logits, static_cast<int64_t>(ref.input_ids.size()), m->config.vocab_size), 1e-4);
}
