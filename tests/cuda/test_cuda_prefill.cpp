// Whole-model prefill through the fused chunk scan (bf16 / f16 modes, supported shapes) against the CPU
// and against the unfused GPU path (CudaOptions::fused_scan off), logits and final states; the prefill conv's
// paired-channel path with the chunk-state scaling and fp32 output of the x channels only.
#include "engine/backend.h"
#include "engine/cpu_ops.h"
#include "engine/model.h"
#include "kernels/conv1d.cuh"
#include "kernels/cuda_backend_impl.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_util.h"

using namespace mamba;
using namespace mamba::test;

namespace {

// Real-model head shapes (head_dim 64, d_state 128) with an odd chunk count and a partial last chunk.
std::shared_ptr<const Model> fused_shapes_model(int64_t groups, int64_t chunk) {
  Config c;
  c.d_model = 256;
  c.n_layer = 2;
  c.d_state = 128;
  c.head_dim = 64;
  c.expand = 2;
  c.n_heads = 8;
  c.n_groups = groups;
  c.chunk_size = chunk;
  c.d_conv = 4;
  c.vocab_size = 300;
  c.tie_embeddings = true;
  c.dt_min = 0;
  c.dt_max = INFINITY;
  c.eos_token_id = 0;
  c.finalize("fused-shapes");
  return Model::random(c, 21);
}

std::unique_ptr<Backend> gpu(std::shared_ptr<const Model> m, const char* dtype) {
  BackendOptions o;
  o.dtype = dtype;
  return make_cuda_backend(std::move(m), o);
}

}  // namespace

TEST_F(CudaTest, FusedPrefillMatchesUnfusedAndCpu) {
  struct Case {
    int64_t groups, chunk, T;
  };
  for (const Case& k : {Case{1, 64, 300}, Case{2, 48, 200}, Case{1, 256, 700}}) {
    auto m = fused_shapes_model(k.groups, k.chunk);
    const int64_t V = m->config.vocab_size;
    const auto ids = random_ids(k.T, V, uint32_t(k.T));
    auto cpu = make_cpu_backend(m);
    const auto ref = all_logits(*cpu, ids, ScanMode::Chunked);
    const State s_cpu = cpu->get_state();
    for (const char* dt : {"bf16", "f16"}) {
      auto fused = gpu(m, dt);
      const auto lf = all_logits(*fused, ids, ScanMode::Chunked);
      const State sf = fused->get_state();
      std::vector<float> lu;
      State su;
      {
        auto unfused = gpu(m, dt);
        dynamic_cast<CudaBackend&>(*unfused).set_fused_scan(false);
        lu = all_logits(*unfused, ids, ScanMode::Chunked);
        su = unfused->get_state();
      }
      const double ef = worst_row_err(lf, ref, k.T, V), eu = worst_row_err(lu, ref, k.T, V), efu = worst_row_err(lf, lu, k.T, V);
      std::printf("  prefill g=%lld Q=%lld T=%lld %-4s vs cpu: fused %.2e, unfused %.2e; fused vs unfused %.2e\n",
                  static_cast<long long>(k.groups), static_cast<long long>(k.chunk), static_cast<long long>(k.T), dt, ef, eu, efu);
      EXPECT_LT(ef, 2e-2) << dt;
      EXPECT_LT(ef, 1.5 * eu + 2e-3) << dt << ": the fused path is less accurate than the unfused one";
      for (size_t l = 0; l < sf.layers.size(); ++l) {
        // The states come out of the same (unfused) kernels; only the outputs' path differs, and the
        // next layer's input with it.
        EXPECT_LT(rel_err(sf.layers[l].ssm.data(), s_cpu.layers[l].ssm.data(), sf.layers[l].ssm.size()), 3e-2);
        if (l == 0) {
          EXPECT_LT(rel_err(sf.layers[l].ssm.data(), su.layers[l].ssm.data(), sf.layers[l].ssm.size()), 1e-6);
        }
      }
    }
  }
}

// A prompt longer than the prefill segment runs in pieces; the fused path carries the state across them.
TEST_F(CudaTest, FusedPrefillAcrossSegments) {
  auto m = fused_shapes_model(1, 64);
  const int64_t V = m->config.vocab_size;
  const auto ids = random_ids(600, V, 17);
  auto cpu = make_cpu_backend(m);
  const auto ref = all_logits(*cpu, ids, ScanMode::Chunked);
  auto b = gpu(m, "bf16");
  dynamic_cast<CudaBackend&>(*b).set_segment(256);
  const double w = worst_row_err(all_logits(*b, ids, ScanMode::Chunked), ref, int64_t(ids.size()), V);
  std::printf("  prefill bf16 in 256-token segments vs cpu worst rel err %.2e\n", w);
  EXPECT_LT(w, 2e-2);
}

// The conv's two-channel path (even C and row stride), with xs and the fp32 output limited to x.
TEST_F(CudaTest, PrefillConvPairsMatchCpu) {
  const int64_t C = 96, ld = C + 6, E = 64, P = 16, H = E / P, Q = 8, K = 4;
  for (int64_t T : {5, 45}) {
    const int64_t T_pad = (T + Q - 1) / Q * Q, pos = 1;
    const auto in = randn(static_cast<size_t>(T * ld), uint32_t(T), 1.f);
    const auto w = randn(static_cast<size_t>(C * K), 4, 0.5f), b = randn(static_cast<size_t>(C), 5, 0.1f);
    const auto state = randn(static_cast<size_t>(C * (K - 1)), 6);
    std::vector<float> ring(static_cast<size_t>(C * K), 1e30f);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < K - 1; ++j) ring[size_t(c * K + ring_slot(pos, j - (K - 1), K))] = state[size_t(c * (K - 1) + j)];
    std::vector<float> ref(static_cast<size_t>(T * C)), st = state;
    cpu::causal_conv1d_silu(in.data(), ld, T, C, K, w.data(), b.data(), st.data(), ref.data());
    const auto dt = uniform(static_cast<size_t>(H * T_pad), 7, 0.f, 0.3f);
    std::vector<float> cs(dt.size());
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T_pad; ++t)
        cs[size_t(h * T_pad + t)] = (t % Q ? cs[size_t(h * T_pad + t - 1)] : 0.f) - 0.7f * dt[size_t(h * T_pad + t)];
    std::vector<float> xs_ref(static_cast<size_t>(T * E));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < E; ++i) {
        const int64_t h = i / P, end = (t / Q + 1) * Q - 1;
        xs_ref[size_t(t * E + i)] =
            ref[size_t(t * C + i)] * std::exp(cs[size_t(h * T_pad + end)] - cs[size_t(h * T_pad + t)]) * dt[size_t(h * T_pad + t)];
      }
    auto d_in = to_dev(in), d_w = to_dev(w), d_b = to_dev(b), d_ring = to_dev(ring), d_dt = to_dev(dt), d_cs = to_dev(cs);
    auto out = poisoned(sizeof(float) * T_pad * C), act = poisoned(2 * T_pad * C), xs = poisoned(2 * T_pad * E);
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
    p.out_act = act.get();
    p.act_dtype = DType::BF16;
    p.xs = xs.get();
    p.dt = d_dt.as<float>();
    p.cs = d_cs.as<float>();
    p.E = E;
    p.P = P;
    p.Q = Q;
    p.out_cols = E;
    launch_conv1d_silu(p, nullptr);
    sync_check();
    const auto got = from_dev(out, size_t(T_pad * C)), got_act = from_dev(act, size_t(T_pad * C), DType::BF16);
    const auto got_xs = from_dev(xs, size_t(T_pad * E), DType::BF16);
    std::vector<float> x_got, x_ref, a_got;
    for (int64_t t = 0; t < T_pad; ++t)
      for (int64_t c = 0; c < C; ++c) {
        const float o = got[size_t(t * C + c)];
        if (c >= E) {
          ASSERT_TRUE(std::isnan(o)) << "fp32 column " << c << " past out_cols written";
        } else if (t >= T) {
          ASSERT_EQ(o, 0.f) << "padded rows must be zero";
        } else {
          x_got.push_back(o);
          x_ref.push_back(ref[size_t(t * C + c)]);
        }
        if (t < T) a_got.push_back(got_act[size_t(t * C + c)]);
      }
    EXPECT_LT(rel_err_v(x_got, x_ref), 1e-6);
    EXPECT_LT(rel_err_v(a_got, ref), 5e-3);
    EXPECT_LT(rel_err_v(std::vector<float>(got_xs.begin(), got_xs.begin() + T * E), xs_ref), 5e-3);
  }
}
