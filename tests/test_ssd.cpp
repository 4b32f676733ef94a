#include <gtest/gtest.h>

#include <random>

#include "engine/ssd.h"
#include "tests/test_util.h"

using namespace mamba;

namespace {

struct SsdCase {
  int64_t T, H, P, G, N;
  std::vector<float> x, B, C, dt, A, y, state;
  SsdCase(int64_t T_, int64_t H_, int64_t P_, int64_t G_, int64_t N_, uint32_t seed) : T(T_), H(H_), P(P_), G(G_), N(N_) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    std::uniform_real_distribution<float> u(0.f, 1.f);
    auto fill = [&](std::vector<float>& v, size_t n) {
      v.resize(n);
      for (auto& e : v) e = nd(rng);
    };
    fill(x, T * H * P);
    fill(B, T * G * N);
    fill(C, T * G * N);
    dt.resize(T * H);
    for (auto& d : dt) d = 0.01f + 0.5f * u(rng);
    A.resize(H);
    for (auto& a : A) a = -(0.2f + 4.f * u(rng));
    y.assign(T * H * P, -777.f);  // poison: every element must be written
    fill(state, H * P * N);
  }
  SsdArgs args(float* y_out, float* st) const {
    SsdArgs a;
    a.T = T;
    a.H = H;
    a.P = P;
    a.G = G;
    a.N = N;
    a.x = x.data();
    a.ldx = H * P;
    a.B = B.data();
    a.ldb = G * N;
    a.C = C.data();
    a.ldc = G * N;
    a.dt = dt.data();
    a.lddt = H;
    a.A = A.data();
    a.y = y_out;
    a.ldy = H * P;
    a.state = st;
    return a;
  }
};

}  // namespace

TEST(Ssd, ChunkedEqualsRecurrentAnyChunkSize) {
  for (auto [T, G] : {std::pair<int64_t, int64_t>{37, 1}, {37, 2}, {1, 1}, {16, 2}}) {
    SsdCase c(T, 4, 8, G, 16, 42 + static_cast<uint32_t>(T));
    std::vector<float> y_ref = c.y, s_ref = c.state;
    ssd_recurrent(c.args(y_ref.data(), s_ref.data()));
    for (int64_t Q : {1, 3, 8, 16, 37, 64}) {
      std::vector<float> y = c.y, s = c.state;
      ssd_chunked(c.args(y.data(), s.data()), Q);
      for (float v : y) ASSERT_NE(v, -777.f) << "unwritten output, Q=" << Q;
      EXPECT_LT(test::rel_err(y.data(), y_ref.data(), y.size()), 2e-5) << "T=" << T << " G=" << G << " Q=" << Q;
      EXPECT_LT(test::rel_err(s.data(), s_ref.data(), s.size()), 2e-5) << "final state, T=" << T << " Q=" << Q;
    }
  }
}

TEST(Ssd, SplitSequenceCarriesState) {
  SsdCase c(40, 2, 8, 1, 8, 7);
  std::vector<float> y_ref = c.y, s_ref = c.state;
  ssd_recurrent(c.args(y_ref.data(), s_ref.data()));
  // first 13 tokens, then the remaining 27, chunked with Q = 5: the state in between carries everything
  SsdCase a = c;
  a.T = 13;
  std::vector<float> y(c.y.size()), s = c.state;
  ssd_chunked(a.args(y.data(), s.data()), 5);
  SsdCase b = c;
  b.T = 27;
  SsdArgs args = b.args(y.data() + 13 * c.H * c.P, s.data());
  args.x += 13 * c.H * c.P;
  args.B += 13 * c.N;
  args.C += 13 * c.N;
  args.dt += 13 * c.H;
  ssd_chunked(args, 5);
  EXPECT_LT(test::rel_err(y.data(), y_ref.data(), y.size()), 2e-5);
  EXPECT_LT(test::rel_err(s.data(), s_ref.data(), s.size()), 2e-5);
}

TEST(Ssd, MatrixFormEqualsScanFromZeroState) {
  SsdCase c(19, 4, 4, 2, 8, 3);
  std::vector<float> y(c.y.size()), s(c.state.size(), 0.f);
  ssd_recurrent(c.args(y.data(), s.data()));
  for (int64_t h = 0; h < c.H; ++h) {
    std::vector<float> M = ssd_matrix(c.args(nullptr, nullptr), h);
    for (int64_t t = 0; t < c.T; ++t) {
      for (int64_t s2 = t + 1; s2 < c.T; ++s2) ASSERT_EQ(M[t * c.T + s2], 0.f) << "M must be lower-triangular";
      for (int64_t p = 0; p < c.P; ++p) {
        double acc = 0;
        for (int64_t s2 = 0; s2 <= t; ++s2) acc += double(M[t * c.T + s2]) * c.x[(s2 * c.H + h) * c.P + p];
        EXPECT_NEAR(acc, y[(t * c.H + h) * c.P + p], 1e-4 * (1 + std::abs(acc)));
      }
    }
  }
}

TEST(Ssd, MatrixIsSemiseparable) {
  // every block strictly below the diagonal has rank <= N: check a 2x2 minor test is not enough, so compare
  // the numerical rank of one off-diagonal block via Gram-Schmidt on its rows.
  SsdCase c(24, 1, 2, 1, 3, 11);
  c.A[0] = -0.05f;  // slow decay, so the far block is not numerically zero
  std::vector<float> M = ssd_matrix(c.args(nullptr, nullptr), 0);
  std::vector<std::vector<double>> basis;
  for (int64_t t = 12; t < 24; ++t) {
    std::vector<double> row(M.begin() + t * 24, M.begin() + t * 24 + 12);
    for (const auto& b : basis) {
      double d = 0;
      for (int i = 0; i < 12; ++i) d += row[i] * b[i];
      for (int i = 0; i < 12; ++i) row[i] -= d * b[i];
    }
    double nrm = 0;
    for (double v : row) nrm += v * v;
    nrm = std::sqrt(nrm);
    if (nrm > 1e-4) {
      for (double& v : row) v /= nrm;
      basis.push_back(row);
    }
  }
  EXPECT_LE(basis.size(), 3u);
  EXPECT_GE(basis.size(), 1u);
}
