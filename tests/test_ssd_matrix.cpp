// The SSD matrix (engine/ssd_matrix.h) against an independent construction from the test's own float64
// forward (tests/naive_mamba2.h): a product of per-step decays rather than a prefix sum, on fixture models
// with n_groups > 1 and a finite dt limit.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ssd_matrix.h"
#include "engine/ssd_toy.h"
#include "tests/naive_mamba2.h"
#include "tests/test_util.h"

#include <nlohmann/json.hpp>

using namespace mamba;
using namespace mamba::test;

namespace {

std::shared_ptr<const Model> fixture_model(const std::string& name) { return Model::load(source_dir() + "/tests/fixtures/models/" + name); }

// The naive forward's layer as a capture (float64 all through).
LayerCapture naive_capture(const NaiveRun& run, int64_t layer, int64_t T) {
  const NaiveLayer& n = run.layers[static_cast<size_t>(layer)];
  LayerCapture c;
  c.layer = layer;
  c.T = T;
  c.x = n.x;
  c.B = n.B;
  c.C = n.C;
  c.dt = n.dt;
  c.y = n.y;
  return c;
}

// M[t,s] = (C_t . B_s) * prod_{k=s+1..t} exp(dt_k A) * dt_s, straight from the definition.
std::vector<double> direct_matrix(const NaiveLayer& n, const Config& c, double A, int64_t head, int64_t T) {
  const int64_t N = c.d_state, G = c.n_groups, H = c.n_heads, g = head / (H / G);
  std::vector<double> M(static_cast<size_t>(T * T), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s <= t; ++s) {
      double cb = 0, decay = 1;
      for (int64_t k = 0; k < N; ++k) cb += n.C[(t * G + g) * N + k] * n.B[(s * G + g) * N + k];
      for (int64_t k = s + 1; k <= t; ++k) decay *= std::exp(n.dt[k * H + head] * A);
      M[t * T + s] = cb * decay * n.dt[s * H + head];
    }
  return M;
}

double rel(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace

TEST(SsdMatrix, EqualsTheDefinitionAndTheScanInFloat64) {
  for (const std::string name : {"dtclamp_k2_bias", "g2_untied_k3"}) {
    SCOPED_TRACE(name);
    auto m = fixture_model(name);
    const Config& c = m->config;
    const int64_t T = 45;
    const auto ids = random_ids(T, c.vocab_size, 17);
    const NaiveRun run = naive_mamba2(*m, ids);
    for (int64_t layer = 0; layer < c.n_layer; ++layer)
      for (int64_t head : {int64_t(0), c.n_heads - 1, c.n_heads / 2}) {
        const LayerCapture cap = naive_capture(run, layer, T);
        const SsdMatrix M = ssd_matrix(cap, c, m->weights.layers[static_cast<size_t>(layer)], head);
        EXPECT_EQ(M.group, head / (c.n_heads / c.n_groups));
        const auto want = direct_matrix(run.layers[static_cast<size_t>(layer)], c, M.A, head, T);
        EXPECT_LE(rel(M.M, want), 1e-12) << "layer " << layer << " head " << head;
        for (int64_t t = 0; t < T; ++t)
          for (int64_t s = t + 1; s < T; ++s) ASSERT_EQ(M.at(t, s), 0.0);  // lower-triangular
        // the duality: M x + D x is the scan's output (the naive recurrence), to float64 rounding
        EXPECT_LE(duality_rel_err(M, cap, c), 1e-10);
        // the factors the view shows multiply back to the entry
        const int64_t t = T - 3, s = 4;
        EXPECT_NEAR(M.cb(cap, t, s) * M.decay(t, s) * M.dt(cap, s), M.at(t, s), 1e-12 * std::abs(M.at(t, s)) + 1e-300);
      }
  }
}

// The values the engine captures from its own float32 forward are the layer's inputs and output.
TEST(SsdMatrix, CaptureFromTheEngineMatchesTheNaiveLayer) {
  auto m = fixture_model("dtclamp_k2_bias");
  const Config& c = m->config;
  const int64_t T = 40;
  const auto ids = random_ids(T, c.vocab_size, 2);
  const NaiveRun run = naive_mamba2(*m, ids);
  for (int64_t layer = 0; layer < c.n_layer; ++layer) {
    const LayerCapture cap = capture_layer(m, ids, layer);
    ASSERT_EQ(cap.T, T);
    const NaiveLayer& n = run.layers[static_cast<size_t>(layer)];
    EXPECT_LE(rel(cap.x, n.x), 1e-5);
    EXPECT_LE(rel(cap.B, n.B), 1e-5);
    EXPECT_LE(rel(cap.C, n.C), 1e-5);
    EXPECT_LE(rel(cap.dt, n.dt), 1e-5);
    EXPECT_LE(rel(cap.y, n.y), 1e-5);
    // the engine's float32 scan output against M built from its own inputs: float32 rounding
    const SsdMatrix M = ssd_matrix(cap, c, m->weights.layers[static_cast<size_t>(layer)], 1);
    EXPECT_LE(duality_rel_err(M, cap, c), 1e-5);
    EXPECT_LE(rel(M.M, direct_matrix(n, c, M.A, 1, T)), 1e-5);
  }
  EXPECT_THROW(capture_layer(m, ids, c.n_layer), Error);
  EXPECT_THROW(capture_layer(m, {}, 0), Error);
}

// The semiseparable theorem: every block strictly below the diagonal has rank <= d_state, and near the
// diagonal it reaches it; the diagonal blocks are not low rank.
TEST(SsdMatrix, OffDiagonalBlocksHaveRankAtMostDState) {
  auto m = fixture_model("g2_untied_k3");
  const Config& c = m->config;
  const int64_t N = c.d_state, Q = N + 9, T = 4 * Q - 5;  // blocks larger than N, a partial last chunk
  const auto ids = random_ids(T, c.vocab_size, 8);
  const NaiveRun run = naive_mamba2(*m, ids);
  const LayerCapture cap = naive_capture(run, 1, T);
  const SsdMatrix M = ssd_matrix(cap, c, m->weights.layers[1], 0);
  const auto ranks = offdiagonal_ranks(M, Q);
  const int64_t nc = (T + Q - 1) / Q;
  ASSERT_EQ(ranks.size(), size_t(nc * nc));
  int at_n = 0;
  for (int64_t i = 0; i < nc; ++i)
    for (int64_t j = 0; j < nc; ++j) {
      const int r = ranks[size_t(i * nc + j)];
      if (j >= i) {
        EXPECT_EQ(r, -1);
        continue;
      }
      EXPECT_GE(r, 1);
      EXPECT_LE(r, N) << "block " << i << "," << j;
      at_n += r == N;
    }
  EXPECT_GE(at_n, 1);
  // a diagonal block is (nearly) full rank, far above N, so the bound is not vacuous: shifted below the
  // diagonal of a bigger matrix, its rank is measured the same way
  SsdMatrix probe;
  probe.T = 2 * Q;
  probe.M.assign(size_t(4 * Q * Q), 0.0);
  for (int64_t t = 0; t < Q; ++t)
    for (int64_t s = 0; s <= t; ++s) probe.M[(Q + t) * 2 * Q + s] = M.at(t, s);
  EXPECT_GT(offdiagonal_ranks(probe, Q)[size_t(1 * 2 + 0)], N);
  EXPECT_THROW(offdiagonal_ranks(M, 0), Error);
}

// Long texts and large dt: the masked, clamped segment sums never overflow or make NaN.
TEST(SsdMatrix, NoNanOrInfAtLongLengthWithDtAtItsLimit) {
  Config c = tiny_config(1);
  c.n_heads = 2;
  c.head_dim = 4;
  c.d_state = 4;
  c.d_model = 4;
  c.expand = 2;
  c.dt_max = 1e4;
  c.finalize("test");
  LayerWeights w;
  w.A = {-50.f, -1e-6f};
  w.D = {1.f, 1.f};
  const int64_t T = 4096, E = c.d_inner, GN = c.n_groups * c.d_state;
  LayerCapture cap;
  cap.T = T;
  cap.x.assign(size_t(T * E), 1.0);
  cap.B.assign(size_t(T * GN), 3.0);
  cap.C.assign(size_t(T * GN), -2.0);
  cap.dt.assign(size_t(T * c.n_heads), c.dt_max);
  cap.y.assign(size_t(T * E), 1.0);
  for (int64_t head : {0, 1}) {
    const SsdMatrix M = ssd_matrix(cap, c, w, head);
    for (double v : M.M) ASSERT_TRUE(std::isfinite(v));
    EXPECT_EQ(M.at(T - 1, T - 1), -24.0 * c.dt_max);  // C.B = 4 * 3 * -2 on the diagonal, no decay
    if (head == 0) {
      EXPECT_EQ(M.at(T - 1, 0), 0.0);  // forgotten completely, without NaN
    }
    EXPECT_TRUE(std::isfinite(M.decay(T - 1, 0)));
  }
}

TEST(SsdMatrix, CancelStopsTheWorkWithAClearError) {
  auto m = fixture_model("g2_untied_k3");
  const auto ids = random_ids(60, m->config.vocab_size, 1);
  std::atomic<bool> cancel{true};
  MatrixOptions opt;
  opt.cancel = &cancel;
  EXPECT_THROW(capture_layer(m, ids, 1, opt), Cancelled);
  const LayerCapture cap = capture_layer(m, ids, 1);
  int64_t last_done = -1;
  opt.cancel = nullptr;
  opt.progress = [&](int64_t done, int64_t total) {
    EXPECT_GE(done, last_done);
    EXPECT_EQ(total, 60);
    last_done = done;
  };
  ssd_matrix(cap, m->config, m->weights.layers[1], 0, opt);
  EXPECT_EQ(last_done, 60);
  opt.cancel = &cancel;
  EXPECT_THROW(ssd_matrix(cap, m->config, m->weights.layers[1], 0, opt), Error);
  EXPECT_EQ(heads_sharing_bc(m->config, 0).size(), size_t(m->config.n_heads / m->config.n_groups));
}

// The playground's toy layer: its matrix, its recurrence and its chunked computation give one y, for
// every dt pattern and B/C choice, whatever the chunk size; the state handed between chunks is the
// recurrence's state at the chunk boundary.
TEST(SsdToy, MatrixRecurrenceAndChunksAgree) {
  for (ToyDt dt : {ToyDt::Constant, ToyDt::Spike, ToyDt::Ramp, ToyDt::Periodic, ToyDt::Random})
    for (ToyBC bc : {ToyBC::Random, ToyBC::Ones, ToyBC::OneHot})
      for (int64_t Q : {1, 3, 8, 29}) {
        ToyParams p;
        p.T = 29;
        p.N = 5;
        p.Q = Q;
        p.A = -0.7;
        p.dt = 0.4;
        p.dt_pattern = dt;
        p.bc = bc;
        p.seed = 3;
        const ToyResult r = run_toy(p);
        SCOPED_TRACE(std::string(toy_dt_name(dt)) + " " + toy_bc_name(bc) + " Q=" + std::to_string(Q));
        double scale = 0;
        for (double v : r.y_recurrent) scale = std::max(scale, std::abs(v));
        const std::vector<double> yc = r.y_chunked();
        for (int64_t t = 0; t < p.T; ++t) {
          EXPECT_NEAR(r.y_matrix[t], r.y_recurrent[t], 1e-12 * scale);
          EXPECT_NEAR(yc[t], r.y_recurrent[t], 1e-12 * scale);
          for (int64_t s = t + 1; s < p.T; ++s) ASSERT_EQ(r.M[t * p.T + s], 0.0);
        }
        for (int64_t c = 1; c * Q < p.T; ++c)
          for (int64_t n = 0; n < p.N; ++n) EXPECT_NEAR(r.chunk_states[c * p.N + n], r.h[(c * Q - 1) * p.N + n], 1e-12);
      }
  ToyParams hand;
  hand.T = 3;
  hand.N = 1;
  hand.Q = 1;
  hand.bc = ToyBC::HandSet;
  hand.B_hand = {1, 2, 3};
  hand.C_hand = {1, 0, 1};
  const ToyResult r = run_toy(hand);
  EXPECT_EQ(r.M[1 * 3 + 0], 0.0);  // C_1 = 0: token 1 reads nothing
  EXPECT_NEAR(r.M[2 * 3 + 0], 1 * 1 * std::exp(2 * hand.dt * hand.A) * hand.dt, 1e-15);
  ToyParams bad;
  bad.T = 65;
  EXPECT_THROW(run_toy(bad), Error);
  bad = ToyParams{};
  bad.A = 0.1;
  EXPECT_THROW(run_toy(bad), Error);
  bad = ToyParams{};
  bad.bc = ToyBC::HandSet;
  EXPECT_THROW(run_toy(bad), Error);
}

// mamba-cli matrix: T rows of T numbers, zeros above the diagonal, equal to the definition built from the
// test's float64 forward; the duality's error is float32 rounding; bad input exits as documented.
TEST(SsdMatrix, CliPrintsTheMatrixAndTheDualityError) {
  auto m = fixture_model("dtclamp_k2_bias");
  const Config& c = m->config;
  const auto ids = random_ids(23, c.vocab_size, 6);
  std::string arg;
  for (size_t i = 0; i < ids.size(); ++i) arg += (i ? "," : "") + std::to_string(ids[i]);
  const std::string cli = std::string(MAMBA_CLI_PATH) + " matrix -m " + source_dir() + "/tests/fixtures/models/dtclamp_k2_bias";
  const CommandResult r = run_command(cli + " --ids " + arg + " --layer 1 --head 5");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["layer"], 1);
  EXPECT_EQ(j["head"], 5);
  EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(), ids);
  EXPECT_LE(j["duality_rel_err"].get<double>(), 1e-5);
  const int64_t T = 23;
  ASSERT_EQ(j["M"].size(), size_t(T));
  std::vector<double> got(T * T);
  for (int64_t t = 0; t < T; ++t) {
    ASSERT_EQ(j["M"][t].size(), size_t(T));
    for (int64_t s = 0; s < T; ++s) got[t * T + s] = j["M"][t][s];
    for (int64_t s = t + 1; s < T; ++s) EXPECT_EQ(got[t * T + s], 0.0);
  }
  const NaiveRun run = naive_mamba2(*m, ids);
  EXPECT_LE(rel(got, direct_matrix(run.layers[1], c, m->weights.layers[1].A[5], 5, T)), 1e-5);
  EXPECT_EQ(run_command(cli + " --ids 1,2 --layer 2 --head 0").code, 2);    // no such layer
  EXPECT_EQ(run_command(cli + " --ids 1,2 --layer 0 --head 12").code, 2);   // no such head
  EXPECT_EQ(run_command(cli + " --ids 1,2 --layer 0").code, 2);             // --head missing
  EXPECT_EQ(run_command(cli + " --layer 0 --head 0").code, 2);              // no prompt
  EXPECT_EQ(run_command(cli + " --ids 1,999 --layer 0 --head 0").code, 1);  // outside the vocabulary
}
