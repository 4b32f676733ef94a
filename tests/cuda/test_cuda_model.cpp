// Whole models on the GPU: the committed float64 fixtures, chunked = recurrent, prefill + steps =
// longer prefill, state round trips, greedy generation equal to the CPU's, device sampling.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/json_lenient.h"
#include "engine/model.h"
#include "engine/session.h"
#include "kernels/cuda_backend_impl.h"
#include "tests/cuda/cuda_models.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_util.h"

using namespace mamba;
using namespace mamba::test;
namespace fs = std::filesystem;

TEST_F(CudaTest, FixturesLogitsMatchFloat64Reference) {
  const auto dirs = model_fixture_dirs();
  ASSERT_GE(dirs.size(), 6u) << "the reference fixtures are missing";
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    const auto ref = load_model_reference(dir);
    auto m = Model::load(dir.string());
    const int64_t V = m->config.vocab_size;
    const std::vector<int32_t>& ids = ref.input_ids;
    const std::vector<float>& want = ref.logits;
    ASSERT_EQ(want.size(), ids.size() * size_t(V));
    for (const char* dt : {"f32", "bf16", "f16"})
      for (ScanMode scan : {ScanMode::Chunked, ScanMode::Recurrent}) {
        auto b = gpu(m, dt);
        const double w = worst_row_err(all_logits(*b, ids, scan), want, int64_t(ids.size()), V);
        std::printf("  fixture %-26s %-4s %-9s worst rel err %.2e\n", dir.filename().string().c_str(), dt, scan_name(scan), w);
        // Low-precision modes: activations rounded to 8 (bf16) or 11 (f16) bits; when the fixture's weights
        // are not already in that dtype, rounding the weights adds about as much again.
        const bool native =
            (std::string(dt) == "bf16" && m->source_dtype == "BF16") || (std::string(dt) == "f16" && m->source_dtype == "F16");
        const double tol = std::string(dt) == "f32" ? 1e-4 : native ? 1.5e-2 : 4e-2;
        EXPECT_LE(w, tol) << dt << " " << scan_name(scan);
      }
    // greedy continuation through the session (prefill + graph-replayed steps), f32 weights
    Session s(gpu(m, "f32"));
    GenerateOptions go;
    go.sampling.temperature = 0;
    go.stop_at_eos = false;
    go.max_new_tokens = int64_t(ref.greedy_ids.size());
    auto r = s.generate(ids, go);
    EXPECT_EQ(r.ids, ref.greedy_ids);
  }
}

TEST_F(CudaTest, ChunkedEqualsRecurrentOnGpu) {
  for (int64_t g : {1, 2})
    for (int64_t k : {2, 3, 4}) {
      auto m = tiny_model(g, k);
      const int64_t V = m->config.vocab_size;
      auto b = gpu(m, "f32");
      auto ids = random_ids(29, V, 1);
      auto rec = all_logits(*b, ids, ScanMode::Recurrent);
      State s_rec = b->get_state();
      for (int64_t Q : {0, 1, 5, 64}) {
        SCOPED_TRACE("g=" + std::to_string(g) + " k=" + std::to_string(k) + " Q=" + std::to_string(Q));
        b->reset_state();
        auto chk = all_logits(*b, ids, ScanMode::Chunked, Q);
        EXPECT_LT(worst_row_err(chk, rec, int64_t(ids.size()), V), 2e-5);
        State s = b->get_state();
        for (size_t l = 0; l < s.layers.size(); ++l) {
          EXPECT_LT(rel_err(s.layers[l].ssm.data(), s_rec.layers[l].ssm.data(), s.layers[l].ssm.size()), 2e-5);
          EXPECT_LT(rel_err(s.layers[l].conv.data(), s_rec.layers[l].conv.data(), s.layers[l].conv.size()), 2e-5);
        }
      }
    }
  // bf16 weights on a model with real chunk sizes
  auto m = medium(1);
  auto b = gpu(m, "bf16");
  auto ids = random_ids(300, m->config.vocab_size, 3);
  auto rec = all_logits(*b, ids, ScanMode::Recurrent);
  b->reset_state();
  auto chk = all_logits(*b, ids, ScanMode::Chunked);
  const double w = worst_row_err(chk, rec, int64_t(ids.size()), m->config.vocab_size);
  std::printf("  medium bf16 chunked vs recurrent worst rel err %.2e\n", w);
  EXPECT_LT(w, 2e-2);
}

TEST_F(CudaTest, MatchesCpuOnMediumModel) {
  for (int64_t g : {1, 2}) {
    auto m = medium(g);
    const int64_t V = m->config.vocab_size;
    auto ids = random_ids(300, V, 4);
    auto cpu = make_cpu_backend(m);
    auto ref = all_logits(*cpu, ids, ScanMode::Chunked);
    for (const char* dt : {"f32", "bf16"}) {
      auto b = gpu(m, dt);
      const double w = worst_row_err(all_logits(*b, ids, ScanMode::Chunked), ref, int64_t(ids.size()), V);
      std::printf("  medium g=%lld %-4s vs cpu worst rel err %.2e\n", static_cast<long long>(g), dt, w);
      EXPECT_LT(w, std::string(dt) == "f32" ? 1e-4 : 2e-2) << dt;
      // the final state too
      State sg = b->get_state(), sc = cpu->get_state();
      EXPECT_EQ(sg.n_tokens, sc.n_tokens);
      for (size_t l = 0; l < sg.layers.size(); ++l) {
        EXPECT_LT(rel_err(sg.layers[l].ssm.data(), sc.layers[l].ssm.data(), sc.layers[l].ssm.size()),
                  std::string(dt) == "f32" ? 1e-4 : 3e-2);
        EXPECT_LT(rel_err(sg.layers[l].conv.data(), sc.layers[l].conv.data(), sc.layers[l].conv.size()),
                  std::string(dt) == "f32" ? 1e-4 : 3e-2);
      }
    }
  }
}

TEST_F(CudaTest, PrefillThenStepEqualsLongerPrefill) {
  for (const char* dt : {"f32", "bf16"}) {
    auto m = tiny_model(2);
    const int64_t V = m->config.vocab_size;
    auto ids = random_ids(22, V, 2);
    auto b = gpu(m, dt);
    auto full = all_logits(*b, ids, ScanMode::Chunked);
    // bf16: the chunked prefill and the decode step round differently (bf16 SSD operands vs fp32 recurrence)
    const double tol = std::string(dt) == "f32" ? 2e-5 : 3e-2;
    for (int64_t T : {1, 2, 3, 8, 21}) {
      b->reset_state();
      std::vector<int32_t> head(ids.begin(), ids.begin() + T);
      std::vector<float> logits(static_cast<size_t>(V));
      ForwardOptions fo;
      b->forward(head, fo, logits.data());
      EXPECT_LT(rel_err(logits.data(), full.data() + (T - 1) * V, size_t(V)), tol);
      for (int64_t t = T; t < int64_t(ids.size()); ++t) {
        b->step(ids[size_t(t)], logits.data());
        EXPECT_LT(rel_err(logits.data(), full.data() + t * V, size_t(V)), tol) << dt << ": prefill " << T << " then step to " << t;
      }
      EXPECT_EQ(b->n_tokens(), int64_t(ids.size()));
    }
  }
}

TEST_F(CudaTest, StateRoundTripAgainstCpu) {
  auto m = tiny_model(2, 3);
  const int64_t V = m->config.vocab_size;
  auto ids = random_ids(13, V, 3);
  auto g = gpu(m, "f32");
  auto c = make_cpu_backend(m);
  std::vector<float> lg(static_cast<size_t>(V)), lc(static_cast<size_t>(V));
  ForwardOptions fo;
  g->forward(ids, fo, lg.data());
  c->forward(ids, fo, lc.data());
  State sg = g->get_state(), sc = c->get_state();
  for (size_t l = 0; l < sc.layers.size(); ++l) {
    EXPECT_LT(rel_err(sg.layers[l].conv.data(), sc.layers[l].conv.data(), sc.layers[l].conv.size()), 1e-5);
    EXPECT_LT(rel_err(sg.layers[l].ssm.data(), sc.layers[l].ssm.data(), sc.layers[l].ssm.size()), 1e-5);
  }
  // a CPU snapshot continues on the GPU exactly as on the CPU, wherever the ring position is
  for (int shift = 0; shift < 3; ++shift) {
    g->reset_state();
    for (int i = 0; i < shift; ++i) g->step(1, lg.data());
    g->set_state(sc);
    auto c2 = make_cpu_backend(m);
    c2->set_state(sc);
    for (int32_t tok : {7, 3, 9}) {
      g->step(tok, lg.data());
      c2->step(tok, lc.data());
      EXPECT_LT(rel_err(lg.data(), lc.data(), size_t(V)), 1e-5) << "shift " << shift;
    }
    EXPECT_EQ(g->n_tokens(), c2->n_tokens());
  }
  State wrong(test::tiny_config(1));
  wrong.layers.pop_back();
  EXPECT_THROW(g->set_state(wrong), Error);
}

TEST_F(CudaTest, RejectsOutOfRangeTokensWithoutTouchingState) {
  auto b = gpu(tiny_model(1), "bf16");
  EXPECT_EQ(bad_ids_problem(*b), "");
}

TEST_F(CudaTest, LongPromptIsSplitIntoSegmentsExactly) {
  auto m = medium(1);
  const int64_t V = m->config.vocab_size;
  auto ids = random_ids(700, V, 5);
  auto b = gpu(m, "f32");
  auto whole = all_logits(*b, ids, ScanMode::Chunked);
  State s_whole = b->get_state();
  dynamic_cast<CudaBackend&>(*b).set_segment(256);
  b->reset_state();
  auto split = all_logits(*b, ids, ScanMode::Chunked);
  EXPECT_LT(worst_row_err(split, whole, int64_t(ids.size()), V), 2e-5);
  State s = b->get_state();
  EXPECT_LT(rel_err(s.layers[2].ssm.data(), s_whole.layers[2].ssm.data(), s.layers[2].ssm.size()), 2e-5);
}

TEST_F(CudaTest, GraphAndPdlDoNotChangeResults) {
  auto m = medium(2);
  const int64_t V = m->config.vocab_size;
  auto ids = random_ids(40, V, 6);
  std::vector<std::vector<float>> runs;
  for (int variant = 0; variant < 3; ++variant) {
    auto bp = gpu(m, "bf16");
    auto& b = dynamic_cast<CudaBackend&>(*bp);
    b.set_use_graph(variant != 0);
    b.set_pdl(variant == 2);
    std::vector<float> logits(static_cast<size_t>(V));
    ForwardOptions fo;
    b.forward(std::span<const int32_t>(ids.data(), 20), fo, logits.data());
    std::vector<float> all;
    for (size_t t = 20; t < ids.size(); ++t) {
      b.step(ids[t], logits.data());
      all.insert(all.end(), logits.begin(), logits.end());
    }
    runs.push_back(all);
  }
  EXPECT_EQ(runs[0], runs[1]) << "graph replay must equal stream launches";
  EXPECT_EQ(runs[0], runs[2]) << "PDL must not change results";
}

// Decode in one kernel per layer (decode_layer.cuh) against the three-kernel decode and the CPU, with and
// without graph + PDL, on shapes whose clusters split their norm group (medium g=1: 2 clusters per group;
// wide: 6 per group, 3 per group at g=2) or own one each (medium g=2), and with 8-block clusters: logits,
// the SSM state and the conv ring after the steps, and the same logits bit for bit when run again.
TEST_F(CudaTest, OneKernelDecodeMatchesThreeKernelsAndCpu) {
  struct Case {
    std::shared_ptr<const Model> m;
    const char* cs;  // CudaOptions::layer_cluster, or "" for the default plan
  };
  const std::vector<Case> cases = {{medium(1), ""}, {medium(2), ""}, {medium(1), "8"}, {wide(1), ""}, {wide(2), ""}};
  for (const Case& cs : cases) {
    const auto& m = cs.m;
    const int64_t V = m->config.vocab_size;
    auto ids = random_ids(30, V, 11);
    auto steps = [&](Backend& b) {
      std::vector<float> logits(static_cast<size_t>(V)), all;
      ForwardOptions fo;
      b.forward(std::span<const int32_t>(ids.data(), 20), fo, logits.data());
      for (size_t t = 20; t < ids.size(); ++t) {
        b.step(ids[t], logits.data());
        all.insert(all.end(), logits.begin(), logits.end());
      }
      return all;
    };
    auto cpu = make_cpu_backend(m);
    const auto ref = steps(*cpu);
    const int64_t n = int64_t(ids.size()) - 20;
    for (const char* dt : {"f32", "bf16", "f16"}) {
      auto b3p = gpu(m, dt);
      auto& b3 = dynamic_cast<CudaBackend&>(*b3p);
      b3.set_decode_fused(false);
      ASSERT_FALSE(b3.decode_fused());
      const auto three = steps(b3);
      for (bool graph : {false, true}) {
        const std::string name = std::string(m->config.d_model == 768 ? "wide" : "medium") + " g=" + std::to_string(m->config.n_groups) +
                                 " " + dt + (graph ? " graph+PDL" : " stream") + (*cs.cs ? std::string(" cs=") + cs.cs : "");
        SCOPED_TRACE(name);
        CudaOptions co;
        co.layer_cluster = std::atoi(cs.cs);
        BackendOptions bo;
        bo.dtype = dt;
        CudaBackend b(m, bo, co);
        ASSERT_TRUE(b.decode_fused()) << "the test shape must take the one-kernel decode: " << b.decode_layer_plan().why;
        if (*cs.cs) {
          EXPECT_EQ(b.decode_layer_plan().cs, std::atoi(cs.cs));
        }
        b.set_use_graph(graph);
        b.set_pdl(graph);
        const auto fused = steps(b);
        const bool f32 = std::string(dt) == "f32";
        const double vs3 = worst_row_err(fused, three, n, V), vs_cpu = worst_row_err(fused, ref, n, V);
        std::printf("  one-kernel decode %-34s (%s): vs three kernels %.2e, vs cpu %.2e\n", name.c_str(), b.decode_layer_plan().why.c_str(),
                    vs3, vs_cpu);
        EXPECT_LT(vs3, f32 ? 1e-5 : 1e-3);
        EXPECT_LT(vs_cpu, f32 ? 1e-4 : 4e-2);
        const State sf = b.get_state(), s3 = b3.get_state();
        ASSERT_EQ(sf.layers.size(), s3.layers.size());
        for (size_t l = 0; l < sf.layers.size(); ++l) {
          EXPECT_LT(rel_err(sf.layers[l].ssm.data(), s3.layers[l].ssm.data(), s3.layers[l].ssm.size()), f32 ? 1e-5 : 1e-3) << "layer " << l;
          EXPECT_LT(rel_err(sf.layers[l].conv.data(), s3.layers[l].conv.data(), s3.layers[l].conv.size()), f32 ? 1e-5 : 1e-3)
              << "layer " << l;
        }
        b.reset_state();
        EXPECT_EQ(steps(b), fused) << "the one-kernel decode is deterministic";
      }
    }
  }
}

TEST_F(CudaTest, DeviceSamplingGreedyEqualsHostGreedy) {
  // Same backend arithmetic both ways (the logits graph and the sampling graph run the same kernels),
  // so the device argmax must reproduce the host sampler's greedy choices exactly.
  auto m = medium(1);
  const int64_t V = m->config.vocab_size;
  auto ids = random_ids(50, V, 7);
  Session host_s(gpu(m, "f32"));
  GenerateOptions go;
  go.probabilities = true;  // probabilities are reported from host logits: the host sampler runs
  go.sampling.temperature = 0;
  go.stop_at_eos = false;
  go.max_new_tokens = 24;
  auto want = host_s.generate(ids, go).ids;

  auto bp = gpu(m, "f32");
  auto& b = dynamic_cast<CudaBackend&>(*bp);
  ForwardOptions fo;
  b.forward(ids, fo, nullptr);
  SamplerParams sp;
  sp.temperature = 0;
  std::vector<int32_t> got = {b.sample_last(sp, 0.5).value()};
  while (got.size() < want.size()) got.push_back(b.step_sample(got.back(), sp, 0.5).value());
  EXPECT_EQ(got, want);
  // with temperature the draw stays inside the vocabulary and follows u
  sp.temperature = 1.f;
  sp.top_k = 5;
  for (double u : {0.0, 0.3, 0.99}) {
    const int32_t id = b.sample_last(sp, u).value();
    EXPECT_GE(id, 0);
    EXPECT_LT(id, V);
  }
  sp.repeat_penalty = 1.2f;  // needs the host history: the caller must sample on the host
  EXPECT_FALSE(b.sample_last(sp, 0.5).has_value());
  EXPECT_FALSE(b.step_sample(got.back(), sp, 0.5).has_value());

  // Session takes the device path when nothing needs host logits: the same greedy ids
  Session dev_s(gpu(m, "f32"));
  go.probabilities = false;
  EXPECT_EQ(dev_s.generate(ids, go).ids, want);
}

namespace {
void expect_same_state(const State& a, const State& b) {
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t l = 0; l < a.layers.size(); ++l) {
    EXPECT_EQ(a.layers[l].ssm, b.layers[l].ssm) << "layer " << l;
    EXPECT_EQ(a.layers[l].conv, b.layers[l].conv) << "layer " << l;
  }
}
}  // namespace

// Chains of decode steps on the device (step_sample_chain) run the same kernels on the same inputs as one
// step per call: the same ids and the same state bit for bit, greedy and sampled (one draw per step), with
// full and partial chains (steps past the requested count do nothing), and a stop id halting the chain
// where it is sampled (the steps after it leave the state alone). Session::generate takes chains when it
// can and gives the same tokens and stop as without them.
TEST_F(CudaTest, DecodeChainEqualsSingleSteps) {
  const int L = 8;
  for (const auto& m : {medium(1), wide(2)}) {
    const int64_t V = m->config.vocab_size;
    const auto prompt = random_ids(20, V, 5);
    for (const char* dt : {"f32", "bf16"}) {
      for (float temp : {0.f, 0.9f}) {
        SCOPED_TRACE(std::string(m->config.d_model == 768 ? "wide g=2 " : "medium g=1 ") + dt + " temperature " + std::to_string(temp));
        SamplerParams sp;
        sp.temperature = temp;
        sp.top_p = temp > 0 ? 0.9f : 1.f;
        const int M = 2 * L + 5;
        std::vector<double> u(static_cast<size_t>(M + L));  // a chain may ask for L draws from any index < M
        std::mt19937 rng(77);
        for (double& x : u) x = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
        auto fresh = [&] {
          auto bp = gpu(m, dt);
          ForwardOptions fo;
          bp->forward(prompt, fo, nullptr);
          return bp;
        };
        // one step per call: ids and the state after each number of steps
        auto rp = fresh();
        auto& r = dynamic_cast<CudaBackend&>(*rp);
        ASSERT_GT(r.decode_chain(), 0) << "the test shape must take the one-kernel decode: " << r.decode_layer_plan().why;
        std::vector<int32_t> want;
        std::vector<State> states;
        int32_t tok = prompt.back();
        for (int i = 0; i < M; ++i) {
          tok = r.step_sample(tok, sp, u[size_t(i)]).value();
          want.push_back(tok);
          states.push_back(r.get_state());
        }
        // chains of L, L, then 5 of L
        auto cp = fresh();
        auto& c = dynamic_cast<CudaBackend&>(*cp);
        c.set_decode_chain(L);
        ASSERT_EQ(c.decode_chain(), L);
        std::vector<int32_t> got;
        tok = prompt.back();
        for (int i = 0; i < M;) {
          const int n = std::min(L, M - i);
          const auto ids = c.step_sample_chain(tok, sp, std::span<const double>(u.data() + i, size_t(n)), {});
          ASSERT_EQ(ids.size(), size_t(n));
          got.insert(got.end(), ids.begin(), ids.end());
          tok = ids.back();
          i += n;
          expect_same_state(c.get_state(), states[size_t(i - 1)]);
        }
        EXPECT_EQ(got, want);
        EXPECT_EQ(c.n_tokens(), r.n_tokens());
        // the chain's LM head (greedy: the residual from the partial products, argmax inside) writes the
        // same logits as the single step's finish kernel + LM head
        EXPECT_EQ(c.last_logits(), r.last_logits());
        // a stop id: the first id at index >= 3 not seen before it
        size_t j = 3;
        while (j + 1 < want.size() && std::find(want.begin(), want.begin() + long(j), want[j]) != want.begin() + long(j)) ++j;
        const int32_t stop_id = want[j];
        auto hp = fresh();
        auto& h = dynamic_cast<CudaBackend&>(*hp);
        h.set_decode_chain(L);
        const std::vector<int32_t> stop = {int32_t(V + 5), stop_id};  // an id never sampled, then the real one
        std::vector<int32_t> halted;
        tok = prompt.back();
        for (size_t i = 0; halted.empty() || halted.back() != stop_id;) {
          const auto ids = h.step_sample_chain(tok, sp, std::span<const double>(u.data() + i, size_t(L)), stop);
          ASSERT_FALSE(ids.empty());
          halted.insert(halted.end(), ids.begin(), ids.end());
          tok = ids.back();
          i += ids.size();
          ASSERT_LE(halted.size(), j + 1);
        }
        EXPECT_EQ(halted, std::vector<int32_t>(want.begin(), want.begin() + long(j) + 1));
        expect_same_state(h.get_state(), states[j]);
        EXPECT_THROW(h.step_sample_chain(tok, sp, std::span<const double>(u.data(), size_t(L + 1)), {}), Error);
      }
    }
  }

  // Session: chains on and off give the same tokens, the same eos stop and the same state after it.
  auto m = medium(1);
  const auto prompt = random_ids(20, m->config.vocab_size, 6);
  GenerateOptions go;
  go.sampling.temperature = 0.9f;
  go.sampling.seed = 5;
  go.stop_at_eos = false;
  go.max_new_tokens = 3 * L + 3;
  auto session = [&](int chain) {
    auto bp = gpu(m, "bf16");
    dynamic_cast<CudaBackend&>(*bp).set_decode_chain(chain);
    return std::make_unique<Session>(std::move(bp));
  };
  const auto plain = session(0)->generate(prompt, go);
  const auto chained = session(L)->generate(prompt, go);
  EXPECT_EQ(chained.ids, plain.ids);
  go.stop_at_eos = true;
  go.eos_id = plain.ids[size_t(L + 4)];
  auto s0 = session(0), s1 = session(L);
  const auto a = s0->generate(prompt, go), b = s1->generate(prompt, go);
  EXPECT_EQ(b.ids, a.ids);
  EXPECT_EQ(b.stop_reason, "eos");
  EXPECT_EQ(a.stop_reason, "eos");
  expect_same_state(s1->state(), s0->state());
  EXPECT_EQ(s1->pending(), s0->pending());
}

TEST_F(CudaTest, DefaultModelGreedyEqualsCpu) {
  const fs::path dir = fs::path(source_dir()) / "resources" / "models" / "mamba2-shakespeare";
  if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "default model not present at " << dir;
  auto m = Model::load(dir.string());
  const auto ids = random_ids(64, std::min<int64_t>(m->config.vocab_size, 200), 8);
  GenerateOptions go;
  go.sampling.temperature = 0;
  go.stop_at_eos = false;
  go.max_new_tokens = 48;
  Session c(make_cpu_backend(m));
  auto want = c.generate(ids, go).ids;
  Session g(gpu(m, "f32"));
  EXPECT_EQ(g.generate(ids, go).ids, want);
  Session gb(gpu(m, "bf16"));
  auto got_bf16 = gb.generate(ids, go).ids;
  size_t same = 0;
  while (same < want.size() && got_bf16[same] == want[same]) ++same;
  std::printf("  default model: bf16 greedy agrees with the CPU for %zu of %zu tokens\n", same, want.size());
}
