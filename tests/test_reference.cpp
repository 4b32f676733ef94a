// The float64 reference against the committed transformers float64 fixtures (tools/make_fixtures.py).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/reference.h"
#include "tests/test_util.h"

using namespace mamba;
namespace fs = std::filesystem;

namespace {

struct Ref64 {
  std::vector<int32_t> ids, greedy;
  std::vector<double> logits, decode;  // (T, V), (n, V) exactly as written (shortest round-trip doubles)
};

Ref64 load_ref64(const fs::path& dir) {
  const std::string path = (dir / "reference.json").string();
  const auto j = parse_json_lenient(read_text_file(path), path);
  Ref64 r;
  r.ids = j["input_ids"].get<std::vector<int32_t>>();
  r.greedy = j["greedy_ids"].get<std::vector<int32_t>>();
  for (const auto& row : j["logits"])
    for (double v : row.get<std::vector<double>>()) r.logits.push_back(v);
  for (const auto& row : j["decode_logits"])
    for (double v : row.get<std::vector<double>>()) r.decode.push_back(v);
  return r;
}

// Worst per-row ||a - b|| / ||b||.
double worst_row(const std::vector<double>& a, const std::vector<double>& b, int64_t rows, int64_t V) {
  double w = 0;
  for (int64_t t = 0; t < rows; ++t) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < V; ++i) {
      const double e = a[size_t(t * V + i)] - b[size_t(t * V + i)];
      num += e * e;
      den += b[size_t(t * V + i)] * b[size_t(t * V + i)];
    }
    w = std::max(w, std::sqrt(num / den));
  }
  return w;
}

std::vector<double> all_logits64(ReferenceModel& m, std::span<const int32_t> ids, ScanMode scan, int64_t Q = 0) {
  ReferenceOptions o;
  o.scan = scan;
  o.chunk_size = Q;
  o.all_logits = true;
  std::vector<double> out(ids.size() * size_t(m.model().config.vocab_size));
  m.forward(ids, o, out.data());
  return out;
}

constexpr double kTol = 1e-12;

}  // namespace

TEST(Reference, FixturesStoreFullDoublePrecision) {
  // The tolerance below only means something if the fixtures keep every digit: each logit must read back
  // as a double that a float cannot hold, i.e. the file was not written from float32 values.
  const auto dirs = test::model_fixture_dirs();
  ASSERT_GE(dirs.size(), 6u);
  for (const auto& dir : dirs) {
    const auto r = load_ref64(dir);
    size_t not_float = 0;
    for (double v : r.logits) not_float += double(float(v)) != v;
    EXPECT_GT(not_float, r.logits.size() * 99 / 100) << dir.filename();
  }
}

TEST(Reference, MatchesTransformersFloat64Fixtures) {
  const auto dirs = test::model_fixture_dirs();
  ASSERT_GE(dirs.size(), 6u);
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    const auto r = load_ref64(dir);
    auto model = Model::load(dir.string());
    const int64_t V = model->config.vocab_size, T = static_cast<int64_t>(r.ids.size());
    ReferenceModel m(model);
    // whole prompt, both scans (chunked at the model's Q and at an odd one)
    EXPECT_LE(worst_row(all_logits64(m, r.ids, ScanMode::Recurrent), r.logits, T, V), kTol) << "recurrent";
    for (int64_t Q : {int64_t(0), int64_t(3)}) {
      m.reset();
      EXPECT_LE(worst_row(all_logits64(m, r.ids, ScanMode::Chunked, Q), r.logits, T, V), kTol) << "chunked Q=" << Q;
    }
    // split prefill: the state carries across calls
    m.reset();
    const size_t cut = r.ids.size() / 2;
    auto a = all_logits64(m, std::span(r.ids).first(cut), ScanMode::Chunked);
    auto b = all_logits64(m, std::span(r.ids).subspan(cut), ScanMode::Chunked);
    a.insert(a.end(), b.begin(), b.end());
    EXPECT_LE(worst_row(a, r.logits, T, V), kTol) << "split";
    // decode: prefill, then one token per step; row k is what picked greedy[k], which must be its arg max
    m.reset();
    const int64_t n = static_cast<int64_t>(r.greedy.size());
    std::vector<double> dec(size_t(n * V));
    m.forward(r.ids, {}, dec.data());
    for (int64_t k = 1; k < n; ++k) m.forward(std::span(r.greedy).subspan(size_t(k - 1), 1), {}, dec.data() + k * V);
    EXPECT_LE(worst_row(dec, r.decode, n, V), kTol) << "decode";
    for (int64_t k = 0; k < n; ++k)
      EXPECT_EQ(std::max_element(dec.begin() + k * V, dec.begin() + (k + 1) * V) - (dec.begin() + k * V), r.greedy[size_t(k)]);
    EXPECT_EQ(m.n_tokens(), T + n - 1);
  }
}

TEST(Reference, TheToleranceCanFail) {
  // One weight moved by a part in 1e9 (far below float resolution) must already show against 1e-12; the
  // float32 backend is far outside it.
  const auto dir = test::model_fixture_dirs().at(0);
  const auto r = load_ref64(dir);
  auto model = std::const_pointer_cast<Model>(Model::load(dir.string()));
  const int64_t V = model->config.vocab_size, T = static_cast<int64_t>(r.ids.size());
  {
    auto moved = std::make_shared<Model>(*model);
    float& w = moved->weights.layers[0].out_proj[7];
    w = std::nextafter(w, 2 * w);  // one float ulp: ~6e-8 relative
    ReferenceModel m(moved);
    EXPECT_GT(worst_row(all_logits64(m, r.ids, ScanMode::Recurrent), r.logits, T, V), 1e-11);
  }
  auto b = make_cpu_backend(model);
  const auto f32 = test::all_logits(*b, r.ids, ScanMode::Chunked);
  std::vector<double> f(f32.begin(), f32.end());
  EXPECT_GT(worst_row(f, r.logits, T, V), 1e-9);
}

TEST(Reference, ResidualObserverSeesEveryLayer) {
  auto model = test::tiny_model(2);
  const auto ids = test::random_ids(11, model->config.vocab_size, 4);
  ReferenceModel m(model);
  const int64_t L = model->config.n_layer, D = model->config.d_model;
  std::vector<std::vector<double>> seen(static_cast<size_t>(L));
  ReferenceOptions o;
  o.residual = [&](int64_t l, int64_t first, int64_t n, const double* r) {
    EXPECT_EQ(first, 0);
    EXPECT_EQ(n, 11);
    seen[size_t(l)].assign(r, r + n * D);
  };
  std::vector<double> last(size_t(model->config.vocab_size)), from_last(last.size());
  m.forward(ids, o, last.data());
  for (const auto& s : seen) EXPECT_EQ(s.size(), size_t(11 * D));
  // the last layer's output is what the logits are computed from
  m.logits_of(seen.back().data() + 10 * D, 1, from_last.data());
  EXPECT_EQ(last, from_last);
  EXPECT_NE(seen[0], seen[1]);
}

TEST(Reference, RejectsAChangedWithoutALog) {
  auto model = std::const_pointer_cast<Model>(test::tiny_model(1));
  model->weights.layers[1].A[2] *= 1.5f;
  EXPECT_THROW(ReferenceModel{model}, Error);
}

TEST(Reference, LinearF64MatchesNaiveSum) {
  const int64_t T = 3, K = 5, N = 70000;  // N spans several converted blocks at this K
  std::vector<double> x(size_t(T * K));
  std::vector<float> W(static_cast<size_t>(N * K)), bias(static_cast<size_t>(N));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(double(i)) * 1.3;
  for (size_t i = 0; i < W.size(); ++i) W[i] = float(std::cos(double(i) * 0.7));
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = float(i % 7) * 0.25f;
  std::vector<double> out(size_t(T * N));
  linear_f64(x.data(), T, K, W.data(), N, bias.data(), out.data());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n : {int64_t(0), int64_t(1), N / 2, N - 1}) {
      double s = bias[size_t(n)];
      for (int64_t k = 0; k < K; ++k) s += x[size_t(t * K + k)] * double(W[size_t(n * K + k)]);
      EXPECT_NEAR(out[size_t(t * N + n)], s, 1e-14 * (1 + std::abs(s)));
    }
}
