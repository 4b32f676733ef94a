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

// Backend::decode's contract, on the CPU (the CUDA tests hold the device path to the same ids).
TEST(Decode, ReportsFeedsAndStopsAsDocumented) {
  auto m = tiny_model(1);
  const std::vector<int32_t> prompt = {3, 4, 5};
  SamplerParams sp;
  sp.temperature = 0;
  auto b = make_cpu_backend(m);
  b->forward(prompt, ForwardOptions{}, nullptr);
  Sampler greedy(sp);
  std::vector<int32_t> ids;
  DecodeRequest req;
  req.steps = 8;
  req.top_n = 3;
  EXPECT_EQ(b->decode(req, greedy, prompt,
                      [&](const DecodedToken& d) {
                        ids.push_back(d.id);
                        EXPECT_EQ(d.info.top.size(), 3u);
                        EXPECT_EQ(d.info.top[0].first, d.id);  // greedy takes the most probable
                        EXPECT_NEAR(d.info.top[0].second, d.info.prob, 1e-7);
                        return true;
                      }),
            8);
  // every id but the last was fed, one step each: the state equals stepping ids[0..6] after the prompt
  auto ref = make_cpu_backend(m);
  ref->forward(prompt, ForwardOptions{}, nullptr);
  for (size_t k = 0; k + 1 < ids.size(); ++k) ref->step(ids[k], nullptr);
  EXPECT_EQ(ref->get_state().layers[0].ssm, b->get_state().layers[0].ssm);
  EXPECT_EQ(b->n_tokens(), static_cast<int64_t>(prompt.size() + ids.size() - 1));

  // a stop id ends the run when sampled; false from the callback ends it too
  b->set_state(ref->get_state());
  req.token = ids.back();
  req.top_n = 0;
  std::vector<int32_t> more;
  const int32_t stop_id = 7;
  req.stop = std::span<const int32_t>(&stop_id, 1);
  req.steps = 50;
  b->decode(req, greedy, {}, [&](const DecodedToken& d) {
    more.push_back(d.id);
    EXPECT_EQ(d.info.top.size(), 0u);
    return more.size() < 5;
  });
  EXPECT_LE(more.size(), 5u);
  EXPECT_TRUE(more.size() == 5u || more.back() == stop_id);
  DecodeRequest bad;
  bad.steps = -1;
  EXPECT_THROW(b->decode(bad, greedy, {}, {}), Error);
  bad.steps = 1;
  bad.top_n = DecodeRequest::kMaxTopN + 1;
  EXPECT_THROW(b->decode(bad, greedy, {}, {}), Error);
}

// One draw of the generator per sampled id, none when greedy: what lets a saved generator continue.
TEST(Decode, UsesOneDrawPerSampledId) {
  auto m = tiny_model(1);
  const std::vector<int32_t> prompt = {1, 2};
  for (float temp : {0.f, 0.9f}) {
    auto b = make_cpu_backend(m);
    b->forward(prompt, ForwardOptions{}, nullptr);
    SamplerParams sp;
    sp.temperature = temp;
    sp.seed = 5;
    Sampler s(sp), ref(sp);
    DecodeRequest req;
    req.steps = 6;
    EXPECT_EQ(b->decode(req, s, prompt, {}), 6);
    if (temp > 0)
      for (int i = 0; i < 6; ++i) ref.next_uniform();
    EXPECT_EQ(s.rng(), ref.rng()) << "temperature " << temp;
  }
}

// Generating 10 and then 10 more with the same generator equals generating 20, sampled and greedy.
TEST(Session, ContinuingTheGeneratorEqualsOneRun) {
  auto m = tiny_model(2);
  const std::vector<int32_t> prompt = {3, 4, 5};
  for (float temp : {0.f, 0.8f}) {
    GenerateOptions go;
    go.sampling.temperature = temp;
    go.sampling.seed = 7;
    go.stop_at_eos = false;
    go.max_new_tokens = 20;
    Session one(make_cpu_backend(m)), two(make_cpu_backend(m));
    const auto all = one.generate(prompt, go).ids;
    go.max_new_tokens = 10;
    auto first = two.generate(prompt, go).ids;
    go.reseed = false;
    const auto second = two.generate({}, go).ids;
    first.insert(first.end(), second.begin(), second.end());
    EXPECT_EQ(first, all) << "temperature " << temp;
    // a reseeded continuation starts the generator again, so it differs when sampling
    if (temp > 0) {
      go.reseed = true;
      Session three(make_cpu_backend(m));
      auto a = three.generate(prompt, go).ids;
      const auto b = three.generate({}, go).ids;
      a.insert(a.end(), b.begin(), b.end());
      EXPECT_NE(a, all);
    }
  }
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
