// The scan comparison: its numbers recomputed here from the backends and the float64 reference, the
// tolerances of docs/COMPARE.md on the fixture models, the FLOP formulas, the sweep and cancel.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "engine/compare.h"
#include "engine/reference.h"
#include "engine/session.h"
#include "tests/test_util.h"

using namespace mamba;

namespace {

std::shared_ptr<const Model> fixture(const std::string& name) {
  return Model::load((std::filesystem::path(test::source_dir()) / "tests" / "fixtures" / "models" / name).string());
}

// docs/COMPARE.md: float32 against float64 on the fixture models.
constexpr double kF32Layer = 5e-6;   // residual stream after a layer, per position
constexpr double kF32State = 5e-6;   // final SSM and conv states
constexpr double kF32Logits = 5e-6;  // logits, per position
constexpr double kF32KL = 1e-10;     // nats

// The formulas as docs/COMPARE.md writes them (closed form, not the engine's loop over chunks).
int64_t doc_scan_chunked(const Config& c, int64_t T, int64_t Q) {
  const int64_t n = (T + Q - 1) / Q, r = T - (n - 1) * Q;
  const int64_t HPN = c.n_heads * c.head_dim * c.d_state;
  return 2 * (c.n_groups * c.d_state + c.n_heads * c.head_dim) * ((n - 1) * Q * Q + r * r) + 4 * T * HPN + 2 * n * HPN;
}
int64_t doc_scan_recurrent(const Config& c, int64_t T) { return T * c.n_heads * c.head_dim * (5 * c.d_state + 1); }
int64_t doc_forward(const Config& c, int64_t T, bool chunked, int64_t Q, int64_t rows) {
  const int64_t per_layer = 2 * T * c.d_model * (c.d_in_proj + c.d_inner) + 2 * T * c.d_conv * c.conv_dim +
                            (chunked && T > 1 ? doc_scan_chunked(c, T, Q) : doc_scan_recurrent(c, T));
  return c.n_layer * per_layer + 2 * rows * c.d_model * c.vocab_size;
}

struct Rows final : ResidualSink {
  std::vector<std::vector<float>> r;  // (L) x (T, D)
  void residual(int64_t layer, int64_t, int64_t T, int64_t D, const float* x) override {
    if (r.size() <= size_t(layer)) r.resize(size_t(layer + 1));
    r[size_t(layer)].insert(r[size_t(layer)].end(), x, x + T * D);
  }
};

double rel(const float* a, const double* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  return std::sqrt(num / den);
}

// A backend that hides its layer outputs, as one without the residual hook would.
class NoResiduals final : public Backend {
 public:
  explicit NoResiduals(std::unique_ptr<Backend> b) : m_b(std::move(b)) {}
  std::string name() const override { return "no residuals"; }
  const Model& model() const override { return m_b->model(); }
  void reset_state() override { m_b->reset_state(); }
  void set_state(const State& s) override { m_b->set_state(s); }
  State get_state() const override { return m_b->get_state(); }
  int64_t n_tokens() const override { return m_b->n_tokens(); }
  void forward(std::span<const int32_t> t, const ForwardOptions& opt, float* logits) override {
    ForwardOptions o = opt;
    o.residuals = nullptr;
    m_b->forward(t, o, logits);
  }
  void step(int32_t token, float* logits, ProbeSink* p) override { m_b->step(token, logits, p); }
  void last_logits(std::span<float> out) const override { m_b->last_logits(out); }
  uint64_t weight_bytes() const override { return m_b->weight_bytes(); }

 private:
  std::unique_ptr<Backend> m_b;
};

}  // namespace

TEST(Compare, FixtureModelsWithinDocumentedTolerances) {
  for (const char* name : {"g1_tied_k4", "g2_untied_k3", "dtclamp_k2_bias", "bf16_weights"}) {
    SCOPED_TRACE(name);
    auto model = fixture(name);
    const auto ids = test::random_ids(29, model->config.vocab_size, 7);
    CompareOptions o;
    o.threads = 2;
    const CompareResult r = compare(model, ids, o);
    ASSERT_EQ(r.runs.size(), 2u);
    ASSERT_EQ(r.pairs.size(), 1u);
    EXPECT_EQ(r.chunk_size, model->config.chunk_size);
    for (const auto& run : r.runs) {
      SCOPED_TRACE(run.spec.name);
      for (int64_t l = 0; l < r.L; ++l) {
        EXPECT_LE(run.vs_ref.max_err(l, r.T), kF32Layer);
        EXPECT_GT(run.vs_ref.max_err(l, r.T), 1e-9);  // float32 is not float64: zero would mean no comparison
        EXPECT_LE(run.vs_ref.ssm_err[size_t(l)], kF32State);
        EXPECT_LE(run.vs_ref.conv_err[size_t(l)], kF32State);
      }
      EXPECT_LE(run.max_logit_err(), kF32Logits);
      EXPECT_LE(run.kl_mean(), kF32KL);
      EXPECT_EQ(run.top1_agree(), 1.0);
      EXPECT_GT(run.seconds, 0);
      ASSERT_EQ(run.layer_seconds.size(), size_t(r.L + 1));
      double sum = 0;
      for (double s : run.layer_seconds) {
        sum += s;
        EXPECT_GE(s, 0);
      }
      EXPECT_NEAR(sum, run.seconds, 1e-9 + 1e-6 * run.seconds);
    }
    // chunked = recurrent to float32 rounding
    const LayerDiff& cr = r.pairs[0].diff;
    for (int64_t l = 0; l < r.L; ++l) EXPECT_LE(cr.max_err(l, r.T), 2 * kF32Layer);
    EXPECT_LE(cr.max_state_err(), 2 * kF32State);
  }
}

TEST(Compare, NumbersAreTheBackendsAgainstTheReference) {
  // Recompute run 0 (chunked) and the pair independently: the backend with a sink of our own, the reference
  // with its callback; every cell, every state, every logit row must be what compare() reported.
  auto model = fixture("g2_untied_k3");
  const auto ids = test::random_ids(300, model->config.vocab_size, 9);  // more than one 256-token segment
  const Config& c = model->config;
  const int64_t T = 300, L = c.n_layer, D = c.d_model, V = c.vocab_size;
  CompareOptions o;
  o.threads = 2;
  o.chunk_size = 5;  // segments of 255 tokens: the second piece starts mid-text
  const CompareResult r = compare(model, ids, o);

  ReferenceModel ref(model);
  std::vector<std::vector<double>> ref_rows(static_cast<size_t>(L));
  ReferenceOptions ro;
  ro.residual = [&](int64_t l, int64_t, int64_t n, const double* x) { ref_rows[size_t(l)].assign(x, x + n * D); };
  std::vector<double> ref_logits(size_t(T * V));
  ro.all_logits = true;
  ref.forward(ids, ro, ref_logits.data());

  // compare() feeds the runs in pieces of whole chunks (255 tokens at Q = 5); so do we, for the same floats
  Rows chunked, recurrent;
  std::vector<float> logits(size_t(T * V)), rec_logits(size_t(T * V));
  BackendOptions bo;
  bo.threads = o.threads;  // the same threads as compare(): OpenMP's reductions split by thread count
  auto b = make_cpu_backend(model, bo);
  ForwardOptions fo;
  fo.chunk_size = 5;
  fo.all_logits = true;
  fo.residuals = &chunked;
  const auto head = std::span(ids).first(255), tail = std::span(ids).subspan(255);
  b->forward(head, fo, logits.data());
  b->forward(tail, fo, logits.data() + 255 * V);
  const State s_chunked = b->get_state();
  b->reset_state();
  fo.scan = ScanMode::Recurrent;
  fo.residuals = &recurrent;
  b->forward(head, fo, rec_logits.data());
  b->forward(tail, fo, rec_logits.data() + 255 * V);
  const State s_rec = b->get_state();
  for (auto* rows : {&chunked, &recurrent})  // (L) x (T, D) in position order: pieces arrive layer by layer
    for (auto& l : rows->r) ASSERT_EQ(l.size(), size_t(T * D));

  const RunReport& run = r.runs[0];
  ASSERT_EQ(run.spec.name, "chunked");
  for (int64_t l = 0; l < L; ++l)
    for (int64_t t : {int64_t(0), int64_t(1), int64_t(254), int64_t(255), int64_t(299)}) {
      const size_t i = size_t(l * T + t);
      EXPECT_NEAR(run.vs_ref.err[i], rel(chunked.r[size_t(l)].data() + t * D, ref_rows[size_t(l)].data() + t * D, D),
                  1e-6 * run.vs_ref.err[i])
          << l << "," << t;
      const int32_t at = run.vs_ref.at[i];
      EXPECT_EQ(run.vs_ref.a[i], double(chunked.r[size_t(l)][size_t(t * D + at)]));
      const double ref_at = ref_rows[size_t(l)][size_t(t * D + at)];
      // float64 through BLAS: the split of its sums follows the thread count, so the last bits may differ
      EXPECT_NEAR(run.vs_ref.b[i], ref_at, 1e-12 * std::abs(ref_at) + 1e-15);
      for (int64_t k = 0; k < D; ++k)
        EXPECT_LE(std::abs(chunked.r[size_t(l)][size_t(t * D + k)] - ref_rows[size_t(l)][size_t(t * D + k)]),
                  std::abs(run.vs_ref.a[i] - run.vs_ref.b[i]) * (1 + 1e-9) + 1e-15);
      // chunked vs recurrent: b of the pair is the recurrent run
      std::vector<double> rec(recurrent.r[size_t(l)].begin() + t * D, recurrent.r[size_t(l)].begin() + (t + 1) * D);
      EXPECT_NEAR(r.pairs[0].diff.err[i], rel(chunked.r[size_t(l)].data() + t * D, rec.data(), D), 1e-6 * r.pairs[0].diff.err[i] + 1e-12);
    }
  for (int64_t l = 0; l < L; ++l) {
    EXPECT_NEAR(run.vs_ref.ssm_err[size_t(l)],
                rel(s_chunked.layers[size_t(l)].ssm.data(), ref.state().ssm[size_t(l)].data(), int64_t(ref.state().ssm[size_t(l)].size())),
                1e-6 * run.vs_ref.ssm_err[size_t(l)]);
    std::vector<double> rc(s_rec.layers[size_t(l)].ssm.begin(), s_rec.layers[size_t(l)].ssm.end());
    EXPECT_NEAR(r.pairs[0].diff.ssm_err[size_t(l)], rel(s_chunked.layers[size_t(l)].ssm.data(), rc.data(), int64_t(rc.size())),
                1e-6 * r.pairs[0].diff.ssm_err[size_t(l)] + 1e-12);
  }
  for (int64_t t : {int64_t(0), int64_t(200), int64_t(299)}) {
    const double e = rel(logits.data() + t * V, ref_logits.data() + t * V, V);
    EXPECT_NEAR(run.logit_err[size_t(t)], e, 1e-6 * e);
    // KL(p64 || p) from the definition
    double m1 = -1e300, m2 = -1e300, s1 = 0, s2 = 0, kl = 0;
    for (int64_t i = 0; i < V; ++i) m1 = std::max(m1, ref_logits[size_t(t * V + i)]), m2 = std::max(m2, double(logits[size_t(t * V + i)]));
    for (int64_t i = 0; i < V; ++i) s1 += std::exp(ref_logits[size_t(t * V + i)] - m1), s2 += std::exp(logits[size_t(t * V + i)] - m2);
    for (int64_t i = 0; i < V; ++i) {
      const double p = std::exp(ref_logits[size_t(t * V + i)] - m1) / s1, q = std::exp(logits[size_t(t * V + i)] - m2) / s2;
      kl += p * std::log(p / q);
    }
    EXPECT_NEAR(run.kl[size_t(t)], std::max(kl, 0.0), 1e-12);
  }
  // the reference's norms
  EXPECT_NEAR(r.ref_norm[size_t(1 * T + 7)],
              std::sqrt(std::inner_product(ref_rows[1].begin() + 7 * D, ref_rows[1].begin() + 8 * D, ref_rows[1].begin() + 7 * D, 0.0)),
              1e-5);
}

TEST(Compare, AFaultShowsInItsLayerAndAfter) {
  // A run on a model whose layer 1 differs: layer 0 stays at float32 rounding, layers 1.. jump.
  auto model = fixture("g2_untied_k3");
  auto broken = std::make_shared<Model>(*model);
  for (float& w : broken->weights.layers[1].out_proj) w *= 1.001f;
  const auto ids = test::random_ids(20, model->config.vocab_size, 2);
  CompareOptions o;
  o.runs = {{"chunked", "cpu", "f32", ScanMode::Chunked}, {"broken", "broken", "f32", ScanMode::Chunked}};
  o.make_backend = [&](const std::string& device, std::shared_ptr<const Model> m, const BackendOptions& bo) {
    return make_cpu_backend(device == "broken" ? broken : m, bo);
  };
  const CompareResult r = compare(model, ids, o);
  const LayerDiff& d = r.runs[1].vs_ref;
  EXPECT_LE(d.max_err(0, r.T), kF32Layer);
  EXPECT_GT(d.max_err(1, r.T), 1e-5);
  EXPECT_GT(d.max_err(2, r.T), 1e-5);
  EXPECT_GT(r.runs[1].max_logit_err(), 1e-5);
  EXPECT_LE(r.pairs[0].diff.max_err(0, r.T), 2 * kF32Layer);
  EXPECT_GT(r.pairs[0].diff.max_err(1, r.T), 1e-5);
}

TEST(Compare, FlopCountsMatchTheFormulas) {
  for (const char* name : {"g1_tied_k4", "dtclamp_k2_bias"}) {
    const Config c = fixture(name)->config;  // a copy: the model is a temporary
    for (int64_t T : {int64_t(1), int64_t(2), int64_t(37), int64_t(64)})
      for (int64_t Q : {int64_t(1), int64_t(3), int64_t(16), T}) {
        EXPECT_EQ(scan_flops_chunked(c, T, Q), doc_scan_chunked(c, T, Q)) << T << " " << Q;
        EXPECT_EQ(forward_flops(c, T, ScanMode::Chunked, Q, 1).total(), doc_forward(c, T, true, Q, 1));
        EXPECT_EQ(forward_flops(c, T, ScanMode::Chunked, Q, T).total(), doc_forward(c, T, true, Q, T));
      }
    for (int64_t T : {int64_t(1), int64_t(37)}) {
      EXPECT_EQ(scan_flops_recurrent(c, T), doc_scan_recurrent(c, T));
      EXPECT_EQ(forward_flops(c, T, ScanMode::Recurrent, 0, 1).total(), doc_forward(c, T, false, 0, 1));
    }
  }
  // Q = T: one quadratic chunk; Q = 1: no quadratic work beyond the per-token products
  const Config c = fixture("g1_tied_k4")->config;  // a copy: the model is a temporary
  EXPECT_GT(scan_flops_chunked(c, 64, 64), scan_flops_chunked(c, 64, 8));
}

TEST(Compare, SweepRunsEveryChunkSize) {
  auto model = fixture("g1_tied_k4");
  const int64_t T = 37;
  const auto ids = test::random_ids(T, model->config.vocab_size, 3);
  CompareOptions o;
  o.threads = 2;
  o.sweep = {1, 3, 16, T};
  const CompareResult r = compare(model, ids, o);
  ASSERT_EQ(r.sweep.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    const SweepPoint& p = r.sweep[i];
    EXPECT_EQ(p.chunk_size, o.sweep[i]);
    EXPECT_EQ(p.flops.total(), doc_forward(model->config, T, true, p.chunk_size, 1));
    EXPECT_GT(p.seconds, 0);
    EXPECT_GT(p.max_rel_err, 1e-9);
    EXPECT_LE(p.max_rel_err, kF32Layer);
    EXPECT_LE(p.state_rel_err, kF32State);
  }
  EXPECT_EQ(r.sweep_recurrent.chunk_size, 0);
  EXPECT_EQ(r.sweep_recurrent.flops.total(), doc_forward(model->config, T, false, 0, 1));
  EXPECT_LE(r.sweep_recurrent.max_rel_err, kF32Layer);
  // Q = 1 and the recurrence do the same sums in a different order; Q = T is one chunk
  EXPECT_NE(r.sweep[0].max_rel_err, r.sweep[3].max_rel_err);

  const auto j = compare_json(r);
  ASSERT_EQ(j["sweep"].size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(j["sweep"][i]["chunk_size"].get<int64_t>(), o.sweep[i]);
    EXPECT_EQ(j["sweep"][i]["flops"].get<int64_t>(), r.sweep[i].flops.total());
    EXPECT_TRUE(j["sweep"][i].contains("seconds"));
    EXPECT_TRUE(j["sweep"][i].contains("max_rel_err"));
  }
  // chunk sizes past the text are clamped to it
  o.sweep = {1000};
  EXPECT_EQ(compare(model, ids, o).sweep[0].chunk_size, T);
}

TEST(Compare, JsonHasTheIssuesShape) {
  auto model = fixture("g1_tied_k4");
  const auto ids = test::random_ids(12, model->config.vocab_size, 1);
  const auto j = compare_json(compare(model, ids, {}));
  EXPECT_EQ(j["tokens"].get<int64_t>(), 12);
  ASSERT_EQ(j["layers"].size(), size_t(model->config.n_layer));
  for (const auto& l : j["layers"])
    for (const char* k : {"layer", "chunked_vs_f64", "recurrent_vs_f64", "chunked_vs_recurrent"}) EXPECT_TRUE(l.contains(k)) << k;
  for (const char* k : {"chunked_vs_f64", "recurrent_vs_f64", "chunked_vs_recurrent"}) EXPECT_TRUE(j["state"].contains(k)) << k;
  for (const char* run : {"chunked", "recurrent"}) {
    for (const char* k : {"max_rel_err", "kl_mean", "top1_agree"}) EXPECT_TRUE(j["logits"][run].contains(k)) << run << k;
    EXPECT_GT(j["timing"][run].get<double>(), 0);
    EXPECT_GT(j["flops"][run].get<int64_t>(), 0);
  }
  EXPECT_TRUE(j["sweep"].is_array());
}

TEST(Compare, CancelMidSweepLeavesEverythingUsable) {
  auto model = fixture("g1_tied_k4");
  const auto ids = test::random_ids(40, model->config.vocab_size, 5);
  Session session(make_cpu_backend(model));
  GenerateOptions go;
  go.sampling.temperature = 0;
  go.max_new_tokens = 6;
  go.stop_at_eos = false;
  const auto before = session.generate(ids, go).ids;

  std::atomic<bool> cancel{false};
  std::vector<std::string> seen;
  CompareOptions o;
  o.sweep = {1, 2, 4, 8, 16, 40};
  o.cancel = &cancel;
  o.progress = [&](double f, const std::string& what) {
    EXPECT_GE(f, 0);
    EXPECT_LE(f, 1);
    seen.push_back(what);
    if (what == "sweep Q = 2") cancel = true;
  };
  EXPECT_THROW(compare(model, ids, o), Cancelled);
  EXPECT_EQ(seen.back(), "sweep Q = 2");  // nothing ran after the flag

  // the session is untouched and goes on; a new comparison runs to the end
  EXPECT_EQ(session.tokens().size(), ids.size() + before.size());
  go.reseed = true;
  session.reset();
  EXPECT_EQ(session.generate(ids, go).ids, before);
  cancel = false;
  o.progress = {};
  EXPECT_EQ(compare(model, ids, o).sweep.size(), 6u);
}

TEST(Compare, BackendWithoutLayerOutputsStillComparesLogitsAndStates) {
  auto model = fixture("g1_tied_k4");
  const auto ids = test::random_ids(10, model->config.vocab_size, 6);
  CompareOptions o;
  o.runs = {{"chunked", "cpu", "f32", ScanMode::Chunked}, {"opaque", "opaque", "f32", ScanMode::Chunked}};
  o.make_backend = [](const std::string& device, std::shared_ptr<const Model> m, const BackendOptions& bo) -> std::unique_ptr<Backend> {
    if (device == "opaque") return std::make_unique<NoResiduals>(make_cpu_backend(m, bo));
    return make_cpu_backend(m, bo);
  };
  const CompareResult r = compare(model, ids, o);
  EXPECT_TRUE(std::isnan(r.runs[1].vs_ref.max_err(0, r.T)));
  EXPECT_TRUE(std::isnan(r.pairs[0].diff.max_err(0, r.T)));
  EXPECT_LE(r.runs[1].max_logit_err(), kF32Logits);
  EXPECT_LE(r.runs[1].vs_ref.max_state_err(), kF32State);
  EXPECT_TRUE(compare_json(r)["layers"][0]["opaque_vs_f64"].is_null());
}

TEST(Compare, BadInputIsAClearError) {
  auto model = fixture("g1_tied_k4");
  const auto ids = test::random_ids(10, model->config.vocab_size, 6);
  CompareOptions o;
  o.memory_limit = 1000;
  try {
    compare(model, ids, o);
    FAIL() << "over the memory limit";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shorter text"), std::string::npos) << e.what();
  }
  EXPECT_THROW(compare(model, std::vector<int32_t>{}, {}), Error);
  EXPECT_THROW(compare(model, std::vector<int32_t>{1, int32_t(model->config.vocab_size)}, {}), Error);
  CompareOptions dup;
  dup.runs = {{"a", "cpu", "f32", ScanMode::Chunked}, {"a", "cpu", "f32", ScanMode::Recurrent}};
  EXPECT_THROW(compare(model, ids, dup), Error);
  CompareOptions gpu;
  gpu.runs = {{"cuda_f32", "cuda", "f32", ScanMode::Chunked}};
  EXPECT_THROW(compare(model, ids, gpu), Error);  // the engine alone has no CUDA backend
  CompareOptions q0;
  q0.sweep = {0};
  EXPECT_THROW(compare(model, ids, q0), Error);
}

TEST(Compare, PowerOfTwoSweep) {
  EXPECT_EQ(power_of_two_sweep(1), (std::vector<int64_t>{1}));
  EXPECT_EQ(power_of_two_sweep(8), (std::vector<int64_t>{1, 2, 4, 8}));
  EXPECT_EQ(power_of_two_sweep(37), (std::vector<int64_t>{1, 2, 4, 8, 16, 32, 37}));
}

// ---- mamba-cli compare ---------------------------------------------------------------------------

namespace {
test::CommandResult run_cli(const std::string& args) { return test::run_command(std::string(MAMBA_CLI_PATH) + " " + args); }
std::string fixture_dir(const std::string& name) { return test::source_dir() + "/tests/fixtures/models/" + name; }
}  // namespace

TEST(CompareCli, PrintsTheJsonOfTheIssue) {
  const auto r = run_cli("compare -m " + fixture_dir("g2_untied_k3") +
                         " --ids 5,9,1,7,3,3,8,2,11,40,41,42,7,7 --chunk-size 4 --sweep 1,3,16 --threads 2");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const Config c = fixture("g2_untied_k3")->config;  // a copy: the model is a temporary
  EXPECT_EQ(j["tokens"].get<int64_t>(), 14);
  EXPECT_EQ(j["chunk_size"].get<int64_t>(), 4);
  EXPECT_EQ(j["ids"].size(), 14u);
  ASSERT_EQ(j["layers"].size(), size_t(c.n_layer));
  for (const auto& l : j["layers"])
    for (const char* k : {"chunked_vs_f64", "recurrent_vs_f64", "chunked_vs_recurrent"}) {
      EXPECT_GT(l[k].get<double>(), 1e-9) << k;
      EXPECT_LT(l[k].get<double>(), kF32Layer) << k;
    }
  EXPECT_EQ(j["flops"]["chunked"].get<int64_t>(), doc_forward(c, 14, true, 4, 1));
  EXPECT_EQ(j["flops"]["recurrent"].get<int64_t>(), doc_forward(c, 14, false, 0, 1));
  ASSERT_EQ(j["sweep"].size(), 3u);
  const int64_t want_q[] = {1, 3, 14};  // 16 is clamped to the text
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(j["sweep"][i]["chunk_size"].get<int64_t>(), want_q[i]);
    EXPECT_EQ(j["sweep"][i]["flops"].get<int64_t>(), doc_forward(c, 14, true, want_q[i], 1));
  }
  EXPECT_TRUE(j["sweep_recurrent"].contains("seconds"));
  EXPECT_EQ(j["logits"]["chunked"]["top1_agree"].get<double>(), 1.0);
}

TEST(CompareCli, TextPromptAndErrors) {
  // the default model has a tokenizer: -i works, pow2 sweeps 1, 2, 4, ..., T
  const auto r = run_cli("compare -i \"ROMEO:\" --sweep pow2 --threads 2");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prompt"].get<std::string>(), "ROMEO:");
  EXPECT_EQ(j["sweep"].size(), power_of_two_sweep(j["tokens"].get<int64_t>()).size());

  const std::string m = " -m " + fixture_dir("g1_tied_k4") + " --ids 1,2,3";
  EXPECT_EQ(run_cli("compare" + m + " --dtype bf16").code, 2);  // the CPU computes in f32
  EXPECT_EQ(run_cli("compare" + m + " --device cuda --dtype f8").code, 2);
  EXPECT_EQ(run_cli("compare" + m + " --sweep 0").code, 2);
  EXPECT_EQ(run_cli("compare" + m + " --sweep 1,x").code, 2);
  EXPECT_EQ(run_cli("compare -m " + fixture_dir("g1_tied_k4")).code, 2);  // no text
  const auto oov = run_cli("compare -m " + fixture_dir("g1_tied_k4") + " --ids 1,96");
  EXPECT_EQ(oov.code, 1);
  EXPECT_NE(oov.err.find("outside the vocabulary"), std::string::npos) << oov.err;
  const auto big = run_cli("compare" + m + " --memory-limit 0 --chunk-size 5000");
  EXPECT_EQ(big.code, 1);
  EXPECT_NE(big.err.find("chunk size"), std::string::npos) << big.err;
}
