// Each CUDA op against its CPU op (engine/cpu_ops.h) on odd shapes, by ||out - ref|| / ||ref||.
#include <algorithm>
#include <numeric>
#include <set>

#include "engine/cpu_ops.h"
#include "engine/ssd.h"
#include "kernels/conv1d.cuh"
#include "kernels/dt_cumsum.cuh"
#include "kernels/embedding.cuh"
#include "kernels/gated_rmsnorm.cuh"
#include "kernels/gemv.cuh"
#include "kernels/rmsnorm.cuh"
#include "kernels/sampling.cuh"
#include "kernels/ssm_step.cuh"
#include "tests/cuda/cuda_test_util.h"

using namespace mamba;
using namespace mamba::test;

namespace {
const DType kAll[] = {DType::F32, DType::BF16, DType::F16};
}

TEST_F(CudaTest, EmbeddingGather) {
  const int64_t V = 37, D = 45, T = 7;
  const auto table = randn(static_cast<size_t>(V * D), 1);
  const std::vector<int32_t> ids = {0, 36, 5, 5, 17, 1, 36};
  for (DType dt : kAll) {
    std::vector<float> rounded;
    auto d_table = to_dev_as(table, dt, &rounded);
    auto d_ids = to_dev(ids);
    auto out = poisoned(sizeof(float) * T * D);
    EmbeddingParams p;
    p.table = d_table.get();
    p.dtype = dt;
    p.ids = d_ids.as<int32_t>();
    p.T = T;
    p.D = D;
    p.out = out.as<float>();
    launch_embedding(p, nullptr);
    sync_check();
    auto got = from_dev(out, size_t(T * D));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t d = 0; d < D; ++d) ASSERT_EQ(got[size_t(t * D + d)], rounded[size_t(ids[t] * D + d)]) << dtype_name(dt);
  }
}

TEST_F(CudaTest, RmsNorm) {
  // D = 77: the scalar path; 200 and 2560: the float4 path (one pass, values kept in registers).
  for (int64_t D : {int64_t(77), int64_t(200), int64_t(2560)}) {
    const int64_t T = 5;
    const auto x = randn(static_cast<size_t>(T * D), uint32_t(2 + D), 2.f), w = randn(static_cast<size_t>(D), uint32_t(3 + D), 0.2f, 1.f);
    std::vector<float> ref(x.size());
    cpu::rmsnorm(x.data(), w.data(), ref.data(), T, D, 1e-5);
    for (DType dt : kAll) {
      auto dx = to_dev(x), dw = to_dev(w);
      auto out = poisoned(dtype_size(dt) * T * D);
      RmsNormParams p;
      p.x = dx.as<float>();
      p.ldx = D;
      p.w = dw.as<float>();
      p.out = out.get();
      p.out_dtype = dt;
      p.ldo = D;
      p.T = T;
      p.D = D;
      p.eps = 1e-5f;
      launch_rmsnorm(p, nullptr);
      sync_check();
      EXPECT_LT(rel_err_v(from_dev(out, x.size(), dt), ref), dt == DType::F32 ? 1e-6 : 5e-3) << D << " " << dtype_name(dt);
    }
  }
}

TEST_F(CudaTest, CausalConv1dAndRing) {
  const int64_t C = 67;
  for (int64_t K : {2, 3, 4})
    for (int64_t T : {1, 2, 5, 33})
      for (int64_t pos : {int64_t(0), K - 1}) {
        SCOPED_TRACE("K=" + std::to_string(K) + " T=" + std::to_string(T) + " pos=" + std::to_string(pos));
        const int64_t ld = C + 9, T_pad = (T + 3 + 3) / 4 * 4;  // padded rows, a multiple of the chunk Q = 4 used below
        const auto in = randn(static_cast<size_t>(T * ld), uint32_t(10 * K + T), 1.f);
        const auto w = randn(static_cast<size_t>(C * K), 4, 0.5f), b = randn(static_cast<size_t>(C), 5, 0.1f);
        auto state = randn(static_cast<size_t>(C * (K - 1)), 6);
        std::vector<float> ring(static_cast<size_t>(C * K), 1e30f);  // the slot the next token owns holds junk: it must never be read
        for (int64_t c = 0; c < C; ++c)
          for (int64_t j = 0; j < K - 1; ++j) ring[size_t(c * K + ring_slot(pos, j - (K - 1), K))] = state[size_t(c * (K - 1) + j)];
        std::vector<float> ref(static_cast<size_t>(T * C));
        cpu::causal_conv1d_silu(in.data(), ld, T, C, K, w.data(), b.data(), state.data(), ref.data());

        auto d_in = to_dev(in), d_w = to_dev(w), d_b = to_dev(b), d_ring = to_dev(ring);
        auto out = poisoned(sizeof(float) * T_pad * C), out_act = poisoned(2 * T_pad * C);
        // the fused chunk-state scaling of the first E channels (heads of P = 8), chunks of Q = 4
        const int64_t E = 48, P = 8, H = E / P, Q = 4;
        const auto dt = uniform(static_cast<size_t>(H * T_pad), 7, 0.f, 0.3f);
        std::vector<float> cs(dt.size());
        for (int64_t h = 0; h < H; ++h)
          for (int64_t t = 0; t < T_pad; ++t)
            cs[size_t(h * T_pad + t)] = (t % Q ? cs[size_t(h * T_pad + t - 1)] : 0.f) - 0.7f * dt[size_t(h * T_pad + t)];
        auto d_dt = to_dev(dt), d_cs = to_dev(cs);
        auto xs = poisoned(sizeof(float) * T_pad * E);
        Conv1dParams p;
        p.in = d_in.as<float>();
        p.ld_in = ld;
        p.w = d_w.as<float>();
        p.b = d_b.as<float>();
        p.ring = d_ring.as<float>();
        p.pos = pos;
        p.T = T;
        p.T_pad = T_pad;
        p.C = C;
        p.K = K;
        p.out = out.as<float>();
        p.out_act = out_act.get();
        p.act_dtype = DType::BF16;
        launch_conv1d_silu(p, nullptr);
        Conv1dParams p32 = p;  // again in f32, with xs
        DeviceBuffer out32 = poisoned(sizeof(float) * T_pad * C);
        p32.out = out32.as<float>();
        p32.out_act = nullptr;
        p32.act_dtype = DType::F32;
        p32.xs = xs.get();
        p32.dt = d_dt.as<float>();
        p32.cs = d_cs.as<float>();
        p32.E = E;
        p32.P = P;
        p32.Q = Q;
        launch_conv1d_silu(p32, nullptr);
        ConvRingUpdateParams u;
        u.in = d_in.as<float>();
        u.ld_in = ld;
        u.ring = d_ring.as<float>();
        u.pos = pos;
        u.T = T;
        u.C = C;
        u.K = K;
        launch_conv_ring_update(u, nullptr);
        sync_check();
        auto got = from_dev(out, size_t(T_pad * C));
        EXPECT_LT(rel_err_v(std::vector<float>(got.begin(), got.begin() + T * C), ref), 1e-6);
        for (int64_t i = T * C; i < T_pad * C; ++i) ASSERT_EQ(got[size_t(i)], 0.f) << "padded rows must be zero";
        auto act = from_dev(out_act, size_t(T_pad * C), DType::BF16);
        EXPECT_LT(rel_err_v(std::vector<float>(act.begin(), act.begin() + T * C), ref), 5e-3);
        // the window after the call, read back at the new position, equals the CPU's new conv state
        auto r = from_dev(d_ring, ring.size());
        const int64_t pos2 = (pos + T) % K;
        std::vector<float> st(state.size());
        for (int64_t c = 0; c < C; ++c)
          for (int64_t j = 0; j < K - 1; ++j) st[size_t(c * (K - 1) + j)] = r[size_t(c * K + ring_slot(pos2, j - (K - 1), K))];
        EXPECT_EQ(st, state);
      }
}

TEST_F(CudaTest, DtSoftplusClampAndChunkCumsum) {
  const int64_t T = 37, H = 5, ld = 11, Q = 8, T_pad = 40;
  const auto raw = randn(static_cast<size_t>(T * ld), 7, 3.f);
  const auto bias = randn(static_cast<size_t>(H), 8), A = uniform(static_cast<size_t>(H), 9, -3.f, -0.2f);
  for (auto [lo, hi] : {std::pair<float, float>{0.f, INFINITY}, {0.05f, 0.5f}}) {
    std::vector<float> ref(static_cast<size_t>(T * H));
    cpu::dt_softplus(raw.data(), ld, T, H, bias.data(), lo, hi, ref.data());
    auto d_raw = to_dev(raw), d_bias = to_dev(bias), d_A = to_dev(A);
    auto dt = poisoned(sizeof(float) * H * T_pad), cs = poisoned(sizeof(float) * H * T_pad);
    DtCumsumParams p;
    p.raw = d_raw.as<float>();
    p.ld_raw = ld;
    p.bias = d_bias.as<float>();
    p.A = d_A.as<float>();
    p.lo = lo;
    p.hi = hi;
    p.T = T;
    p.T_pad = T_pad;
    p.H = H;
    p.Q = Q;
    p.dt = dt.as<float>();
    p.cs = cs.as<float>();
    launch_dt_cumsum(p, nullptr);
    sync_check();
    auto g_dt = from_dev(dt, size_t(H * T_pad)), g_cs = from_dev(cs, size_t(H * T_pad));
    for (int64_t h = 0; h < H; ++h) {
      float run = 0.f;
      for (int64_t t = 0; t < T_pad; ++t) {
        const float want = t < T ? ref[size_t(t * H + h)] : 0.f;
        EXPECT_NEAR(g_dt[size_t(h * T_pad + t)], want, 1e-6f * std::max(1.f, std::fabs(want)));
        if (t % Q == 0) run = 0.f;
        run += want * A[size_t(h)];
        EXPECT_NEAR(g_cs[size_t(h * T_pad + t)], run, 1e-5f * std::max(1.f, std::fabs(run)));
      }
    }
  }
}

TEST_F(CudaTest, GatedRmsNormWithSkip) {
  for (int64_t G : {1, 3}) {
    const int64_t T = 6, H = 6, P = 8, E = H * P, ldx = E + 5, ldz = 2 * E + 3;
    const auto y = randn(static_cast<size_t>(T * E), 11), x = randn(static_cast<size_t>(T * ldx), 12),
               z = randn(static_cast<size_t>(T * ldz), 13);
    const auto D = randn(static_cast<size_t>(H), 14), w = randn(static_cast<size_t>(E), 15, 0.2f, 1.f);
    std::vector<float> ref = y;
    cpu::add_skip(x.data(), ldx, D.data(), ref.data(), T, H, P);
    cpu::gated_rmsnorm(ref.data(), z.data(), ldz, w.data(), T, E, G, 1e-5);
    for (DType dt : kAll) {
      auto dy = to_dev(y), dx = to_dev(x), dz = to_dev(z), dD = to_dev(D), dw = to_dev(w);
      auto out = poisoned(dtype_size(dt) * T * E);
      GatedRmsNormParams p;
      p.y = dy.as<float>();
      p.ldy = E;
      p.x = dx.as<float>();
      p.ldx = ldx;
      p.D = dD.as<float>();
      p.P = P;
      p.z = dz.as<float>();
      p.ldz = ldz;
      p.w = dw.as<float>();
      p.T = T;
      p.E = E;
      p.G = G;
      p.eps = 1e-5f;
      p.out = out.get();
      p.out_dtype = dt;
      p.ldo = E;
      launch_gated_rmsnorm(p, nullptr);
      sync_check();
      EXPECT_LT(rel_err_v(from_dev(out, ref.size(), dt), ref), dt == DType::F32 ? 1e-6 : 5e-3) << "G=" << G << " " << dtype_name(dt);
    }
  }
}

TEST_F(CudaTest, GemvWithFusedNorms) {
  // Both kernels: the shared-memory one (small matrices) and the streaming one (forced, or too large).
  // K: the vector prologue with norm groups inside a warp's span (96 / 3), across it (2700 / 3), aligned
  // (1536 / 3, 5120 / 8); the scalar one (45).
  for (bool streaming : {false, true})
    for (DType dt : kAll)
      for (int64_t K : {96, 45, 1536, 2700, 5120})
        for (int64_t R : {131, 3000}) {
          SCOPED_TRACE(std::string(dtype_name(dt)) + " K=" + std::to_string(K) + " R=" + std::to_string(R) +
                       (streaming ? " streaming" : ""));
          const auto W = randn(static_cast<size_t>(R * K), uint32_t(K + R), 0.05f);
          const auto x = randn(static_cast<size_t>(K), 21), nw = randn(static_cast<size_t>(K), 22, 0.2f, 1.f),
                     bias = randn(static_cast<size_t>(R), 23);
          std::vector<float> Wr;
          auto dW = to_dev_as(W, dt, &Wr);
          auto dx = to_dev(x), dnw = to_dev(nw), dbias = to_dev(bias);
          // RmsNorm prologue (in_proj / LM head)
          std::vector<float> h(static_cast<size_t>(K)), ref(static_cast<size_t>(R));
          cpu::rmsnorm(x.data(), nw.data(), h.data(), 1, K, 1e-5);
          cpu::linear(h.data(), 1, K, Wr.data(), R, bias.data(), ref.data());
          auto out = poisoned(sizeof(float) * R);
          GemvParams p;
          p.W = dW.get();
          p.wdtype = dt;
          p.R = R;
          p.K = K;
          p.bias = dbias.as<float>();
          p.prologue = GemvPrologue::RmsNorm;
          p.x = dx.as<float>();
          p.norm_w = dnw.as<float>();
          p.eps = 1e-5f;
          p.out = out.as<float>();
          p.force_streaming = streaming;
          p.prefetch_next = dW.get();
          p.prefetch_next_bytes = std::min<int64_t>(1 << 20, R * K * int64_t(dtype_size(dt)));  // a hint only
          launch_gemv(p, nullptr, false);
          sync_check();
          EXPECT_LT(rel_err_v(from_dev(out, size_t(R)), ref), 1e-5);
          // GroupRmsNorm prologue, accumulating (out_proj into the residual)
          if (const int64_t G = K % 3 == 0 ? 3 : K % 8 == 0 ? 8 : 0; G > 0) {
            const int64_t gs = K / G;
            const auto r0 = randn(static_cast<size_t>(R), 25);
            std::vector<float> g(static_cast<size_t>(K)), ref2(static_cast<size_t>(R));
            for (int64_t gi = 0; gi < G; ++gi) {
              double ss = 0;
              for (int64_t k = gi * gs; k < (gi + 1) * gs; ++k) ss += double(x[size_t(k)]) * x[size_t(k)];
              const double r = 1.0 / std::sqrt(ss / double(gs) + 1e-5);
              for (int64_t k = gi * gs; k < (gi + 1) * gs; ++k) g[size_t(k)] = float(x[size_t(k)] * r * nw[size_t(k)]);
            }
            cpu::linear(g.data(), 1, K, Wr.data(), R, nullptr, ref2.data());
            for (int64_t i = 0; i < R; ++i) ref2[size_t(i)] += r0[size_t(i)];
            auto dr = to_dev(r0);
            p.prologue = GemvPrologue::GroupRmsNorm;
            p.groups = G;
            p.bias = nullptr;
            p.out = dr.as<float>();
            p.accumulate = true;
            launch_gemv(p, nullptr, false);
            sync_check();
            EXPECT_LT(rel_err_v(from_dev(dr, static_cast<size_t>(R)), ref2), 1e-5);
          }
        }
}

TEST_F(CudaTest, SsmStepMatchesCpuDecode) {
  struct Shape {
    int64_t H, P, G, N, K;
  };
  for (Shape s : {Shape{4, 32, 1, 16, 4}, Shape{8, 64, 2, 64, 3}, Shape{6, 64, 3, 128, 4}, Shape{4, 12, 2, 40, 2}}) {
    SCOPED_TRACE("H=" + std::to_string(s.H) + " P=" + std::to_string(s.P) + " G=" + std::to_string(s.G) + " N=" + std::to_string(s.N));
    const int64_t E = s.H * s.P, CD = E + 2 * s.G * s.N, Din = 2 * E + 2 * s.G * s.N + s.H, K = s.K, pos = 1 % K;
    const auto zx = randn(static_cast<size_t>(Din), 31);
    const auto w = randn(static_cast<size_t>(CD * K), 32, 0.5f), b = randn(static_cast<size_t>(CD), 33, 0.1f);
    const auto dt_bias = randn(static_cast<size_t>(s.H), 34, 0.5f, -1.f), A = uniform(static_cast<size_t>(s.H), 35, -4.f, -0.3f),
               D = randn(static_cast<size_t>(s.H), 36);
    auto conv_state = randn(static_cast<size_t>(CD * (K - 1)), 37);
    auto ssm = randn(static_cast<size_t>(s.H * s.P * s.N), 38);
    std::vector<float> ring(static_cast<size_t>(CD * K), 1e30f);
    for (int64_t c = 0; c < CD; ++c)
      for (int64_t j = 0; j < K - 1; ++j) ring[size_t(c * K + ring_slot(pos, j - (K - 1), K))] = conv_state[size_t(c * (K - 1) + j)];
    const float lo = 0.f, hi = 0.3f;

    // CPU: conv step, dt, recurrent SSD with T = 1, D skip
    std::vector<float> xbc(static_cast<size_t>(CD)), dt(static_cast<size_t>(s.H)), y(static_cast<size_t>(E));
    cpu::causal_conv1d_silu(zx.data() + E, Din, 1, CD, K, w.data(), b.data(), conv_state.data(), xbc.data());
    cpu::dt_softplus(zx.data() + E + CD, Din, 1, s.H, dt_bias.data(), lo, hi, dt.data());
    std::vector<float> ssm_ref = ssm;
    SsdArgs a;
    a.T = 1;
    a.H = s.H;
    a.P = s.P;
    a.G = s.G;
    a.N = s.N;
    a.x = xbc.data();
    a.ldx = CD;
    a.B = xbc.data() + E;
    a.ldb = CD;
    a.C = xbc.data() + E + s.G * s.N;
    a.ldc = CD;
    a.dt = dt.data();
    a.lddt = s.H;
    a.A = A.data();
    a.y = y.data();
    a.ldy = E;
    a.state = ssm_ref.data();
    ssd_recurrent(a);
    cpu::add_skip(xbc.data(), CD, D.data(), y.data(), 1, s.H, s.P);

    auto d_zx = to_dev(zx), d_w = to_dev(w), d_b = to_dev(b), d_ring = to_dev(ring), d_dtb = to_dev(dt_bias), d_A = to_dev(A),
         d_D = to_dev(D);
    auto d_ssm = to_dev(ssm);
    auto d_io = to_dev(std::vector<int32_t>{0, int32_t(pos)});
    SsmStepParams p;
    p.zx = d_zx.as<float>();
    p.step_io = d_io.as<int32_t>();
    p.E = E;
    p.conv_dim = CD;
    p.H = s.H;
    p.P = s.P;
    p.G = s.G;
    p.N = s.N;
    p.K = K;
    p.conv_w = d_w.as<float>();
    p.conv_b = d_b.as<float>();
    p.ring = d_ring.as<float>();
    p.dt_bias = d_dtb.as<float>();
    p.A = d_A.as<float>();
    p.D = d_D.as<float>();
    p.dt_lo = lo;
    p.dt_hi = hi;
    p.state = d_ssm.as<float>();
    for (bool gate : {false, true}) {  // the same step twice from the same state and window: gated output the second time
      auto ssm_in = to_dev(ssm), ring_in = to_dev(ring);
      CUDA_CHECK(cudaMemcpy(d_ssm.get(), ssm_in.get(), ssm_in.bytes(), cudaMemcpyDeviceToDevice));
      CUDA_CHECK(cudaMemcpy(d_ring.get(), ring_in.get(), ring_in.bytes(), cudaMemcpyDeviceToDevice));
      auto out = poisoned(sizeof(float) * E);
      p.y = out.as<float>();
      p.gate = gate;
      launch_ssm_step(p, nullptr, false);
      sync_check();
      std::vector<float> want = y;
      if (gate)
        for (int64_t i = 0; i < E; ++i) want[size_t(i)] *= cpu::silu(zx[size_t(i)]);
      EXPECT_LT(rel_err_v(from_dev(out, static_cast<size_t>(E)), want), 1e-5) << "gate " << gate;
      EXPECT_LT(rel_err_v(from_dev(d_ssm, ssm.size()), ssm_ref), 1e-6);
    }
    auto r = from_dev(d_ring, ring.size());
    std::vector<float> st(conv_state.size());
    const int64_t pos2 = (pos + 1) % K;
    for (int64_t c = 0; c < CD; ++c)
      for (int64_t j = 0; j < K - 1; ++j) st[size_t(c * (K - 1) + j)] = r[size_t(c * K + ring_slot(pos2, j - (K - 1), K))];
    EXPECT_EQ(st, conv_state);
  }
}

namespace {
// The CPU sampler's kept set (descending order, top-k then top-p then min-p), ties at the cut added.
std::vector<int32_t> cpu_kept_set(const std::vector<float>& logits, float temp, int top_k, float top_p, float min_p) {
  const int64_t n = int64_t(logits.size());
  const float mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> q(logits.size());
  double z = 0;
  for (size_t i = 0; i < q.size(); ++i) z += (q[i] = std::exp(double(logits[i] - mx) / temp));
  std::vector<int32_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return q[size_t(a)] > q[size_t(b)]; });
  int64_t keep = top_k > 0 ? std::min<int64_t>(top_k, n) : n;
  double cum = 0;
  if (top_p < 1.f)
    for (int64_t i = 0; i < keep; ++i)
      if ((cum += q[size_t(idx[size_t(i)])] / z) >= top_p) {
        keep = i + 1;
        break;
      }
  int64_t k2 = 1;
  while (k2 < keep && q[size_t(idx[size_t(k2)])] >= min_p) ++k2;
  keep = k2;
  const double cut = q[size_t(idx[size_t(keep - 1)])];
  std::vector<int32_t> out;
  for (int64_t i = 0; i < n; ++i)
    if (q[size_t(i)] >= cut * (1 - 1e-5)) out.push_back(int32_t(i));
  return out;
}
}  // namespace

// Single-block and multi-block (the decode graph's) sampling: argmax with ties and the maximum in the last
// block's slice, and draws inside the CPU's kept set.
TEST_F(CudaTest, SamplingOnDevice) {
  const int64_t V = 1000;
  const auto logits = randn(static_cast<size_t>(V), 41, 3.f);
  const int32_t argmax = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  auto d_logits = to_dev(logits);
  auto d_out = poisoned(sizeof(int32_t));
  DeviceBuffer d_cfg(sizeof(SampleConfig));
  DeviceBuffer d_ws(sizeof(SampleWorkspace));
  CUDA_CHECK(cudaMemset(d_ws.get(), 0, sizeof(SampleWorkspace)));
  bool multi = false;
  auto run = [&](SampleConfig c) {
    c.n = V;
    CUDA_CHECK(cudaMemcpy(d_cfg.get(), &c, sizeof(c), cudaMemcpyHostToDevice));
    SampleParams p;
    p.logits = d_logits.as<float>();
    p.cfg = d_cfg.as<SampleConfig>();
    p.out = d_out.as<int32_t>();
    p.ws = multi ? d_ws.as<SampleWorkspace>() : nullptr;
    launch_sample(p, nullptr);
    int32_t id = -1;
    CUDA_CHECK(cudaMemcpy(&id, d_out.get(), sizeof(id), cudaMemcpyDeviceToHost));
    return id;
  };
  for (bool m : {false, true}) {
    multi = m;
    SCOPED_TRACE(m ? "multi-block" : "one block");
    // the maximum in the last slice, then tied at two ids (the lowest wins)
    auto moved = logits;
    moved[size_t(V - 3)] = 100.f;
    d_logits = to_dev(moved);
    EXPECT_EQ(run(SampleConfig{}), V - 3);
    moved[size_t(5)] = 100.f;
    d_logits = to_dev(moved);
    EXPECT_EQ(run(SampleConfig{}), 5);
    d_logits = to_dev(logits);
    EXPECT_EQ(run(SampleConfig{}), argmax);
  }
  SampleConfig c;
  EXPECT_EQ(run(c), argmax);  // temperature 0
  c.temperature = 1.f;
  c.top_k = 1;
  EXPECT_EQ(run(c), argmax);
  c.top_k = 0;
  c.top_p = 1e-6f;
  EXPECT_EQ(run(c), argmax);
  c.top_p = 1.f;
  c.min_p = 1.f;
  EXPECT_EQ(run(c), argmax);
  struct Case {
    float temp;
    int k;
    float p;
    float minp;
  };
  for (Case k :
       {Case{1.f, 50, 1.f, 0.f}, Case{0.7f, 0, 0.9f, 0.f}, Case{1.3f, 20, 0.5f, 0.f}, Case{1.f, 0, 1.f, 0.05f}, Case{1.f, 0, 1.f, 0.f}}) {
    const auto kept = cpu_kept_set(logits, k.temp, k.k, k.p, k.minp);
    std::set<int32_t> seen;
    for (int i = 0; i < 200; ++i) {
      c.temperature = k.temp;
      c.top_k = k.k;
      c.top_p = k.p;
      c.min_p = k.minp;
      c.u = (float(i) + 0.5f) / 200.f;
      const int32_t id = run(c);
      ASSERT_TRUE(std::binary_search(kept.begin(), kept.end(), id)) << "id " << id << " outside the kept set of " << kept.size();
      seen.insert(id);
    }
    EXPECT_GT(seen.size(), std::min<size_t>(kept.size(), 3) - 1);  // the draw actually varies with u
  }
}
