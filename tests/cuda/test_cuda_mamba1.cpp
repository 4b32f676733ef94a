// Mamba-1 on CUDA: its two ops against the CPU ops on odd shapes, and whole models against the format
// fixtures' float64 references (tests/fixtures/formats), the CPU backend, snapshots and probes.
#include <gtest/gtest.h>

#include "backends/backend_factory.h"
#include "engine/checkpoint.h"
#include "engine/cpu_ops.h"
#include "engine/mamba1_scan.h"
#include "engine/session.h"
#include "kernels/mamba1_conv.cuh"
#include "kernels/mamba1_scan.cuh"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_util.h"

using namespace mamba;
using test::CudaTest;

namespace {

std::string fixture(const std::string& name) { return test::source_dir() + "/tests/fixtures/formats/" + name; }

BackendOptions cuda_opts(const std::string& dtype) {
  BackendOptions o;
  o.dtype = dtype;
  return o;
}

}  // namespace

TEST_F(CudaTest, Mamba1ConvMatchesCpu) {
  for (auto [T, E, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 37, 4}, {7, 37, 2}, {33, 130, 4}, {2, 5, 4}, {5, 9, 1}}) {
    const int64_t W = K - 1;
    const auto in = test::randn(size_t(T * 2 * E), 1 + T);  // x | z rows
    const auto w = test::randn(size_t(E * K), 2);
    const auto b = test::randn(size_t(E), 3);
    auto state = test::randn(size_t(std::max<int64_t>(1, E * W)), 4);
    auto d_in = test::to_dev(in), d_w = test::to_dev(w), d_b = test::to_dev(b), d_state = test::to_dev(state);
    auto d_out = test::poisoned(size_t(T * E) * 4);
    Mamba1ConvParams p;
    p.in = d_in.as<float>();
    p.ld_in = 2 * E;
    p.w = d_w.as<float>();
    p.b = d_b.as<float>();
    p.state = d_state.as<float>();
    p.out = d_out.as<float>();
    p.T = T;
    p.E = E;
    p.K = K;
    launch_mamba1_conv(p, nullptr);
    test::sync_check();
    std::vector<float> out(size_t(T * E));
    cpu::causal_conv1d_silu(in.data(), 2 * E, T, E, K, w.data(), b.data(), state.data(), out.data());
    EXPECT_LT(test::rel_err_v(test::from_dev(d_out, out.size()), out), 1e-6) << "T=" << T << " E=" << E << " K=" << K;
    if (W > 0) {
      EXPECT_LT(test::rel_err_v(test::from_dev(d_state, size_t(E * W)), std::vector<float>(state.begin(), state.begin() + E * W)), 1e-7);
    }
  }
}

TEST_F(CudaTest, Mamba1ScanMatchesCpu) {
  for (auto [T, E, N] :
       {std::tuple<int64_t, int64_t, int64_t>{1, 53, 16}, {19, 53, 5}, {40, 130, 16}, {3, 17, 1}, {9, 20, 40}, {6, 33, 128}}) {
    for (DType dt : {DType::F32, DType::BF16}) {
      const auto x = test::randn(size_t(T * E), 10);
      const auto dt_raw = test::randn(size_t(T * E), 11, 1.f, -2.f);
      const auto bias = test::randn(size_t(E), 12, 0.5f);
      const auto bc = test::randn(size_t(T * 2 * N), 13);
      const auto A = test::uniform(size_t(E * N), 14, -8.f, -0.5f);
      const auto D = test::randn(size_t(E), 15);
      const auto z = test::randn(size_t(T * E), 16);
      auto h0 = test::randn(size_t(E * N), 17, 0.3f);
      auto d_x = test::to_dev(x), d_dt = test::to_dev(dt_raw), d_bias = test::to_dev(bias), d_bc = test::to_dev(bc), d_A = test::to_dev(A),
           d_D = test::to_dev(D), d_z = test::to_dev(z), d_h = test::to_dev(h0);
      auto d_y = test::poisoned(size_t(T * E) * 4), d_pdt = test::poisoned(size_t(T * E) * 4), d_yp = test::poisoned(size_t(T * E) * 4),
           d_sq = test::poisoned(size_t(T * E) * 4);
      Mamba1ScanParams p;
      p.T = T;
      p.E = E;
      p.N = N;
      p.x = d_x.as<float>();
      p.dt_raw = d_dt.as<float>();
      p.dt_bias = d_bias.as<float>();
      p.B = d_bc.as<float>();
      p.C = d_bc.as<float>() + N;
      p.ldbc = 2 * N;
      p.A = d_A.as<float>();
      p.D = d_D.as<float>();
      p.z = d_z.as<float>();
      p.ldz = E;
      p.state = d_h.as<float>();
      p.y = d_y.get();
      p.y_dtype = dt;
      p.dt_out = d_pdt.as<float>();
      p.y_pre = d_yp.as<float>();
      p.state_sq = d_sq.as<float>();
      launch_mamba1_scan(p, nullptr);
      test::sync_check();
      // CPU: softplus, the recurrent scan, the gate.
      std::vector<float> dtv(size_t(T * E)), y(size_t(T * E)), h = h0, norms(size_t(T * E));
      cpu::dt_softplus(dt_raw.data(), E, T, E, bias.data(), 0.0, INFINITY, dtv.data());
      SelectiveScanArgs a;
      a.T = T;
      a.E = E;
      a.N = N;
      a.x = x.data();
      a.ldx = E;
      a.dt = dtv.data();
      a.B = bc.data();
      a.C = bc.data() + N;
      a.ldbc = 2 * N;
      a.A = A.data();
      a.D = D.data();
      a.y = y.data();
      a.state = h.data();
      a.state_norm = norms.data();
      a.groups = E;  // one channel per group: sqrt(sum_n h^2)
      selective_scan_recurrent(a);
      std::vector<float> gated(y.size()), sq(y.size());
      for (int64_t i = 0; i < T * E; ++i) {
        gated[i] = y[i] * cpu::silu(z[i]);
        sq[i] = norms[i] * norms[i];
      }
      const std::string what = "T=" + std::to_string(T) + " E=" + std::to_string(E) + " N=" + std::to_string(N) + " " + dtype_name(dt);
      EXPECT_LT(test::rel_err_v(test::from_dev(d_y, y.size(), dt), gated), test::tol_for(dt, 2e-5)) << what;
      EXPECT_LT(test::rel_err_v(test::from_dev(d_pdt, dtv.size()), dtv), 1e-6) << what;
      EXPECT_LT(test::rel_err_v(test::from_dev(d_yp, y.size()), y), 2e-5) << what;
      EXPECT_LT(test::rel_err_v(test::from_dev(d_sq, sq.size()), sq), 2e-5) << what;
      EXPECT_LT(test::rel_err_v(test::from_dev(d_h, h.size()), h), 2e-5) << what;
    }
  }
}

TEST_F(CudaTest, Mamba1FixturesMatchTheirReferences) {
  for (const char* name : {"mamba1_hf", "mamba1_hf_bias", "mamba1_original", "mambac", "gguf_mamba1"}) {
    const Checkpoint ck = load_checkpoint(fixture(name));
    const auto ref = test::load_model_reference(fixture(name));
    const int64_t V = ck.model->config.vocab_size, T = static_cast<int64_t>(ref.input_ids.size());
    for (const char* dt : {"f32", "bf16"}) {
      auto b = make_backend("cuda", ck.model, cuda_opts(dt));
      const auto logits = test::all_logits(*b, ref.input_ids, ScanMode::Chunked);
      const double tol = std::string(dt) == "f32" ? 1e-4 : 3e-2;
      EXPECT_LT(test::worst_row_err(logits, ref.logits, T, V), tol) << name << " " << dt;
      if (std::string(dt) != "f32") continue;
      Session s(make_backend("cuda", ck.model, cuda_opts(dt)));
      GenerateOptions go;
      go.max_new_tokens = static_cast<int64_t>(ref.greedy_ids.size());
      go.sampling.temperature = 0;
      go.stop_at_eos = false;
      EXPECT_EQ(s.generate(ref.input_ids, go).ids, ref.greedy_ids) << name;
      auto stepper = make_backend("cuda", ck.model, cuda_opts(dt));
      std::vector<float> row(static_cast<size_t>(V));
      stepper->forward(ref.input_ids, {}, row.data());
      for (size_t k = 0; k < ref.greedy_ids.size(); ++k) {
        if (k > 0) stepper->step(ref.greedy_ids[k - 1], row.data());
        EXPECT_LT(test::rel_err(row.data(), ref.decode_logits.data() + k * V, size_t(V)), 1e-4) << name << " step " << k;
      }
    }
  }
}

TEST_F(CudaTest, Mamba1StateRoundTripAndProbesAgainstCpu) {
  const Checkpoint ck = load_checkpoint(fixture("mamba1_hf"));
  const auto ids = test::random_ids(20, ck.model->config.vocab_size, 8);
  const int64_t V = ck.model->config.vocab_size;
  auto cpu = make_cpu_backend(ck.model);
  auto gpu = make_backend("cuda", ck.model, cuda_opts("f32"));
  std::vector<float> a(static_cast<size_t>(V)), b(static_cast<size_t>(V));
  cpu->forward(std::span<const int32_t>(ids.data(), 12), {}, a.data());
  gpu->set_state(cpu->get_state());
  cpu->forward(std::span<const int32_t>(ids.data() + 12, 8), {}, a.data());
  gpu->forward(std::span<const int32_t>(ids.data() + 12, 8), {}, b.data());
  EXPECT_LT(test::rel_err(b.data(), a.data(), a.size()), 1e-5);
  const State sc = cpu->get_state(), sg = gpu->get_state();
  EXPECT_EQ(sg.n_tokens, sc.n_tokens);
  EXPECT_LT(test::rel_err_v(sg.layers[1].ssm, sc.layers[1].ssm), 1e-5);
  EXPECT_LT(test::rel_err_v(sg.layers[1].conv, sc.layers[1].conv), 1e-6);
  EXPECT_EQ(test::bad_ids_problem(*gpu), "");
  // Probes: the same values on both backends, prefill and decode.
  ProbeRecorder rc(ck.model->config, ck.model->weights), rg(ck.model->config, ck.model->weights);
  cpu->reset_state();
  gpu->reset_state();
  ForwardOptions fc, fg;
  fc.probes = &rc;
  fg.probes = &rg;
  cpu->forward(std::span<const int32_t>(ids.data(), 15), fc, a.data());
  gpu->forward(std::span<const int32_t>(ids.data(), 15), fg, b.data());
  cpu->step(ids[15], a.data(), &rc);
  gpu->step(ids[15], b.data(), &rg);
  const ProbeFrames pc = rc.frames(0, 16), pg = rg.frames(0, 16);
  ASSERT_EQ(pg.count, 16);
  EXPECT_LT(test::rel_err_v(pg.dt, pc.dt), 1e-5);
  EXPECT_LT(test::rel_err_v(pg.state_norm, pc.state_norm), 1e-4);
  EXPECT_LT(test::rel_err_v(pg.y_norm, pc.y_norm), 1e-4);
  EXPECT_LT(test::rel_err_v(pg.resid_norm, pc.resid_norm), 1e-5);
}

TEST_F(CudaTest, Mamba1RealShapeRunsAndAgreesWithCpu) {
  // mamba-130m's shape with random weights: bf16 on the GPU against f32 on the CPU.
  auto m = Model::random(Config::preset("mamba1-130m"), 2);
  const auto ids = test::random_ids(40, 50277, 3);
  auto cpu = make_cpu_backend(m);
  auto gpu = make_backend("cuda", m, cuda_opts("bf16"));
  const auto a = test::all_logits(*cpu, ids, ScanMode::Chunked), b = test::all_logits(*gpu, ids, ScanMode::Chunked);
  EXPECT_LT(test::worst_row_err(b, a, 40, m->config.vocab_size), 3e-2);
  std::vector<float> x(static_cast<size_t>(m->config.vocab_size)), y(x.size());
  cpu->step(7, x.data());
  gpu->step(7, y.data());
  EXPECT_LT(test::rel_err(y.data(), x.data(), x.size()), 3e-2);
}
