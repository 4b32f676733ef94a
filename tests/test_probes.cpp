// Probes (engine/probes.h) against values recomputed in float64 by the test's own forward
// (tests/naive_mamba2.h), on fixture models with n_groups > 1, a finite dt limit and partial chunks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/backend.h"
#include "engine/probe_stats.h"
#include "engine/probes.h"
#include "engine/session.h"
#include "tests/naive_mamba2.h"
#include "tests/test_util.h"

#include <nlohmann/json.hpp>

using namespace mamba;
using namespace mamba::test;

namespace {

std::shared_ptr<const Model> fixture_model(const std::string& name) { return Model::load(source_dir() + "/tests/fixtures/models/" + name); }

// ||a - b|| / ||b|| over a whole series.
double rel_err(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

struct Expected {
  std::vector<double> dt, decay, state_norm, y_norm, resid_norm;  // (T, L, H) / (T, L), as ProbeFrames
};

Expected expected_probes(const Model& m, const NaiveRun& run, int64_t T) {
  const Config& c = m.config;
  const int64_t L = c.n_layer, H = c.n_heads, P = c.head_dim, D = c.d_model, E = c.d_inner;
  Expected e;
  e.dt.resize(T * L * H);
  e.decay.resize(T * L * H);
  e.state_norm.resize(T * L * H);
  e.y_norm.resize(T * L * H);
  e.resid_norm.resize(T * L);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t l = 0; l < L; ++l) {
      const NaiveLayer& nl = run.layers[static_cast<size_t>(l)];
      double rs = 0;
      for (int64_t i = 0; i < D; ++i) rs += nl.resid_in[t * D + i] * nl.resid_in[t * D + i];
      e.resid_norm[t * L + l] = std::sqrt(rs);
      for (int64_t h = 0; h < H; ++h) {
        const size_t o = static_cast<size_t>((t * L + l) * H + h);
        e.dt[o] = nl.dt[t * H + h];
        e.decay[o] = std::exp(nl.dt[t * H + h] * double(m.weights.layers[static_cast<size_t>(l)].A[h]));
        e.state_norm[o] = nl.state_norm[t * H + h];
        double ys = 0;
        for (int64_t p = 0; p < P; ++p) ys += nl.y[t * E + h * P + p] * nl.y[t * E + h * P + p];
        e.y_norm[o] = std::sqrt(ys);
      }
    }
  return e;
}

void expect_frames_match(const ProbeFrames& f, const Expected& e, double tol, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_LE(rel_err(f.dt, e.dt), tol) << "dt";
  EXPECT_LE(rel_err(f.decay, e.decay), tol) << "decay";
  EXPECT_LE(rel_err(f.state_norm, e.state_norm), tol) << "state norm";
  EXPECT_LE(rel_err(f.y_norm, e.y_norm), tol) << "y norm";
  EXPECT_LE(rel_err(f.resid_norm, e.resid_norm), tol) << "residual norm";
}

}  // namespace

// The test's own forward reproduces transformers' float64 logits: what the probes are checked against is right.
TEST(Probes, NaiveForwardMatchesTheFixtureReference) {
  for (const auto& dir : model_fixture_dirs()) {
    SCOPED_TRACE(dir.filename().string());
    const auto ref = load_model_reference(dir);
    auto m = Model::load(dir.string());
    const NaiveRun run = naive_mamba2(*m, ref.input_ids);
    ASSERT_EQ(run.logits.size(), ref.logits.size());
    EXPECT_LE(rel_err(ref.logits, run.logits), 1e-5);
  }
}

// dt, decay, ||h_t||, ||y_t|| and ||r|| from every path (chunked with whole and partial chunks, recurrent,
// prefill then single steps) equal the recomputed float64 values to 1e-5 relative.
TEST(Probes, MatchIndependentFloat64Values) {
  for (const std::string name : {"dtclamp_k2_bias", "g2_untied_k3", "noconvbias_expand1_short"}) {
    SCOPED_TRACE(name);
    auto m = fixture_model(name);
    const Config& c = m->config;
    ASSERT_TRUE(name != "dtclamp_k2_bias" || (c.n_groups > 1 && std::isfinite(c.dt_max)));
    const int64_t T = 37;  // not a multiple of the chunk sizes below
    const auto ids = random_ids(T, c.vocab_size, 11);
    const Expected e = expected_probes(*m, naive_mamba2(*m, ids), T);
    for (int64_t Q : {16, 5, 64}) {
      ProbeRecorder rec(c, m->weights);
      auto b = make_cpu_backend(m);
      ForwardOptions fo;
      fo.chunk_size = Q;
      fo.probes = &rec;
      b->forward(ids, fo, nullptr);
      ASSERT_EQ(rec.begin(), 0);
      ASSERT_EQ(rec.end(), T);
      expect_frames_match(rec.frames(0, T), e, 1e-5, "chunked Q=" + std::to_string(Q));
    }
    {
      ProbeRecorder rec(c, m->weights);
      auto b = make_cpu_backend(m);
      ForwardOptions fo;
      fo.scan = ScanMode::Recurrent;
      fo.probes = &rec;
      b->forward(ids, fo, nullptr);
      expect_frames_match(rec.frames(0, T), e, 1e-5, "recurrent");
    }
    {  // prefill 20 tokens, then one step per token
      ProbeRecorder rec(c, m->weights);
      auto b = make_cpu_backend(m);
      ForwardOptions fo;
      fo.probes = &rec;
      b->forward(std::span<const int32_t>(ids.data(), 20), fo, nullptr);
      for (int64_t t = 20; t < T; ++t) b->step(ids[t], nullptr, &rec);
      expect_frames_match(rec.frames(0, T), e, 1e-5, "prefill then steps");
    }
  }
}

// The comparison can fail: a perturbed A changes decay and the state norms beyond the tolerance.
TEST(Probes, MutatedModelFails) {
  auto m = std::const_pointer_cast<Model>(fixture_model("dtclamp_k2_bias"));
  const auto ids = random_ids(21, m->config.vocab_size, 3);
  const Expected e = expected_probes(*m, naive_mamba2(*m, ids), 21);
  for (float& a : m->weights.layers[1].A) a *= 1.01f;
  ProbeRecorder rec(m->config, m->weights);
  auto b = make_cpu_backend(m);
  ForwardOptions fo;
  fo.probes = &rec;
  b->forward(ids, fo, nullptr);
  const ProbeFrames f = rec.frames(0, 21);
  EXPECT_GT(rel_err(f.state_norm, e.state_norm), 1e-5);
  EXPECT_GT(rel_err(f.decay, e.decay), 1e-5);
}

// Probes on or off: the same logits, bit for bit, in both scans and in decode.
TEST(Probes, OffOrOnChangesNoLogits) {
  auto m = fixture_model("g2_untied_k3");
  const int64_t V = m->config.vocab_size;
  const auto ids = random_ids(30, V, 5);
  for (ScanMode scan : {ScanMode::Chunked, ScanMode::Recurrent}) {
    ProbeRecorder rec(m->config, m->weights);
    auto a = make_cpu_backend(m), b = make_cpu_backend(m);
    std::vector<float> la(30 * V), lb(30 * V);
    ForwardOptions fo;
    fo.scan = scan;
    fo.all_logits = true;
    a->forward(ids, fo, la.data());
    fo.probes = &rec;
    b->forward(ids, fo, lb.data());
    EXPECT_EQ(la, lb) << scan_name(scan);
    std::vector<float> sa(V), sb(V);
    a->step(4, sa.data());
    b->step(4, sb.data(), &rec);
    EXPECT_EQ(sa, sb) << "step";
  }
}

// A session streams probes for the prompt and every generated token; the window bounds what is held.
TEST(Probes, WindowBoundsMemoryAndKeepsTheNewest) {
  auto m = fixture_model("dtclamp_k2_bias");
  const Config& c = m->config;
  const auto prompt = random_ids(25, c.vocab_size, 9);
  ProbeRecorder all(c, m->weights), last8(c, m->weights, 8);
  struct Both : ProbeSink {
    ProbeSink *a, *b;
    void layer(const LayerProbe& p) override {
      a->layer(p);
      b->layer(p);
    }
  } both;
  both.a = &all;
  both.b = &last8;
  Session s(make_cpu_backend(m));
  s.set_probes(&both);
  GenerateOptions go;
  go.sampling.temperature = 0;
  go.stop_at_eos = false;
  go.max_new_tokens = 12;
  s.generate(prompt, go);
  // the prompt and the 11 generated tokens fed so far (the last one is pending)
  EXPECT_EQ(all.end(), 25 + 11);
  EXPECT_EQ(all.begin(), 0);
  EXPECT_EQ(last8.end(), 36);
  EXPECT_EQ(last8.begin(), 28);
  const ProbeFrames a = all.frames(28, 36), b = last8.frames(0, 100);
  EXPECT_EQ(b.first, 28);
  EXPECT_EQ(b.count, 8);
  EXPECT_EQ(a.state_norm, b.state_norm);
  EXPECT_EQ(a.dt, b.dt);
  EXPECT_EQ(ProbeRecorder::bytes_per_position(c.n_layer, c.n_heads), 4 * c.n_layer * (3 * c.n_heads + 1));
  // cutting the sequence back forgets what follows; the same positions arriving again replace it
  all.truncate(30);
  EXPECT_EQ(all.end(), 30);
  EXPECT_EQ(all.frames(0, 100).count, 30);
  all.clear();
  EXPECT_EQ(all.end(), 0);
  EXPECT_THROW(ProbeRecorder(c, m->weights, 0), Error);
}

// The views' statistics against a direct computation: the layer series for one head and the reductions,
// each head's half-life (median over positions of ln 2 / -(dt A)) and its decay over lag (median over
// start positions of the product of the next k decays).
TEST(ProbeStats, SeriesHalfLifeAndDecayOverLag) {
  ProbeFrames f;
  f.first = 10;
  f.count = 7;
  f.L = 2;
  f.H = 3;
  const size_t n = size_t(f.count * f.L * f.H);
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(0.05f, 0.95f);
  for (size_t i = 0; i < n; ++i) {
    f.decay.push_back(u(rng));
    f.dt.push_back(u(rng));
    f.state_norm.push_back(u(rng));
    f.y_norm.push_back(u(rng));
  }
  for (int64_t i = 0; i < f.count * f.L; ++i) f.resid_norm.push_back(float(i));
  auto at = [&](const std::vector<float>& v, int64_t t, int64_t l, int64_t h) { return v[size_t((t * f.L + l) * f.H + h)]; };

  const auto one = layer_series(f, ProbeMetric::StateNorm, 2), mean = layer_series(f, ProbeMetric::Dt, kMeanOverHeads),
             mx = layer_series(f, ProbeMetric::Decay, kMaxOverHeads), r = layer_series(f, ProbeMetric::ResidNorm, 0);
  for (int64_t l = 0; l < f.L; ++l)
    for (int64_t t = 0; t < f.count; ++t) {
      EXPECT_EQ(one[size_t(l * f.count + t)], at(f.state_norm, t, l, 2));
      EXPECT_NEAR(mean[size_t(l * f.count + t)], (at(f.dt, t, l, 0) + at(f.dt, t, l, 1) + at(f.dt, t, l, 2)) / 3.0, 1e-6);
      EXPECT_EQ(mx[size_t(l * f.count + t)], std::max({at(f.decay, t, l, 0), at(f.decay, t, l, 1), at(f.decay, t, l, 2)}));
      EXPECT_EQ(r[size_t(l * f.count + t)], float(t * f.L + l));
    }
  EXPECT_THROW(layer_series(f, ProbeMetric::Dt, 3), Error);

  const auto mem = layer_memory(f, 1, 100);
  ASSERT_EQ(mem.size(), 3u);
  for (int64_t h = 0; h < 3; ++h) {
    std::vector<double> hl;
    for (int64_t t = 0; t < f.count; ++t) hl.push_back(std::log(2.0) / -std::log(double(at(f.decay, t, 1, h))));
    std::sort(hl.begin(), hl.end());
    EXPECT_NEAR(mem[h].half_life, hl[3], 1e-9 * hl[3]);  // 7 positions: the 4th smallest
    ASSERT_EQ(mem[h].decay_at_lag.size(), 6u);           // lags 1..count-1
    for (int64_t k = 1; k <= 6; ++k) {
      std::vector<double> d;
      for (int64_t t = 0; t + k < f.count; ++t) {
        double p = 1;
        for (int64_t j = t + 1; j <= t + k; ++j) p *= at(f.decay, j, 1, h);
        d.push_back(p);
      }
      std::sort(d.begin(), d.end());
      const double med = d.size() % 2 ? d[d.size() / 2] : 0.5 * (d[d.size() / 2 - 1] + d[d.size() / 2]);
      EXPECT_NEAR(mem[h].decay_at_lag[size_t(k - 1)], med, 1e-9) << "head " << h << " lag " << k;
    }
  }
  const auto all = half_lives(f);
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[3 + 1], mem[1].half_life);
  EXPECT_EQ(parse_metric("state_norm"), ProbeMetric::StateNorm);
  EXPECT_THROW(parse_metric("h"), Error);
}

// mamba-cli probe: the prompt and its greedy continuation, every value [layer][position][head] equal to
// the float64 recomputation over those tokens, in both scans; bad input exits as documented.
TEST(Probes, CliPrintsEveryLayerPositionAndHead) {
  auto m = fixture_model("dtclamp_k2_bias");
  const Config& c = m->config;
  const auto prompt = random_ids(19, c.vocab_size, 21);
  std::string ids;
  for (size_t i = 0; i < prompt.size(); ++i) ids += (i ? "," : "") + std::to_string(prompt[i]);
  for (const std::string scan : {"chunked", "recurrent"}) {
    const CommandResult r = run_command(std::string(MAMBA_CLI_PATH) + " probe -m " + source_dir() +
                                        "/tests/fixtures/models/dtclamp_k2_bias --ids " + ids + " -n 5 --scan " + scan);
    ASSERT_EQ(r.code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["layers"], c.n_layer);
    EXPECT_EQ(j["heads"], c.n_heads);
    const std::vector<int32_t> tokens = j["tokens"];
    ASSERT_EQ(tokens.size(), prompt.size() + 5);
    EXPECT_TRUE(std::equal(prompt.begin(), prompt.end(), tokens.begin()));
    // the continuation is the greedy one
    Session s(make_cpu_backend(m));
    GenerateOptions go;
    go.sampling.temperature = 0;
    go.stop_at_eos = false;
    go.max_new_tokens = 5;
    EXPECT_EQ(std::vector<int32_t>(tokens.begin() + 19, tokens.end()), s.generate(prompt, go).ids);

    const int64_t T = static_cast<int64_t>(tokens.size());
    const Expected e = expected_probes(*m, naive_mamba2(*m, tokens), T);
    auto cube = [&](const char* name) {
      std::vector<float> v(static_cast<size_t>(T * c.n_layer * c.n_heads));
      EXPECT_EQ(j[name].size(), size_t(c.n_layer)) << name;
      for (int64_t l = 0; l < c.n_layer; ++l) {
        EXPECT_EQ(j[name][l].size(), size_t(T)) << name;
        for (int64_t t = 0; t < T; ++t)
          for (int64_t h = 0; h < c.n_heads; ++h) v[size_t((t * c.n_layer + l) * c.n_heads + h)] = j[name][l][t][h];
      }
      return v;
    };
    EXPECT_LE(rel_err(cube("dt"), e.dt), 1e-5) << scan;
    EXPECT_LE(rel_err(cube("decay"), e.decay), 1e-5) << scan;
    EXPECT_LE(rel_err(cube("state_norm"), e.state_norm), 1e-5) << scan;
    EXPECT_LE(rel_err(cube("y_norm"), e.y_norm), 1e-5) << scan;
    std::vector<float> rn(static_cast<size_t>(T * c.n_layer));
    for (int64_t l = 0; l < c.n_layer; ++l)
      for (int64_t t = 0; t < T; ++t) rn[size_t(t * c.n_layer + l)] = j["resid_norm"][l][t];
    EXPECT_LE(rel_err(rn, e.resid_norm), 1e-5) << scan;
  }
  const std::string cli = std::string(MAMBA_CLI_PATH) + " probe -m " + source_dir() + "/tests/fixtures/models/dtclamp_k2_bias";
  EXPECT_EQ(run_command(cli + " -n 2").code, 2);                   // no prompt
  EXPECT_EQ(run_command(cli + " --ids 1,2 -n -1").code, 2);        // negative count
  const CommandResult oov = run_command(cli + " --ids 1,100000");  // outside the vocabulary
  EXPECT_EQ(oov.code, 1);
  EXPECT_NE(oov.err.find("outside the vocabulary"), std::string::npos) << oov.err;
}
