// The scan comparison with the CUDA runs: every dtype against the float64 reference on the fixtures, the
// per-layer outputs from the prefill's residual hook, the FLOP formulas, and the sweep on the GPU.
#include <cmath>

#include "backends/backend_factory.h"
#include "engine/compare.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_util.h"

using namespace mamba;
using namespace mamba::test;

TEST_F(CudaTest, CompareAgainstFloat64) {
  for (const char* name : {"g1_tied_k4", "bf16_weights"}) {
    SCOPED_TRACE(name);
    const auto dir = std::filesystem::path(source_dir()) / "tests" / "fixtures" / "models" / name;
    auto m = Model::load(dir.string());
    const auto ids = load_model_reference(dir).input_ids;
    const int64_t T = static_cast<int64_t>(ids.size());
    CompareOptions o;
    o.runs = default_compare_runs("cuda", {});
    o.make_backend = [](const std::string& device, std::shared_ptr<const Model> model, const BackendOptions& bo) {
      return make_backend(device, std::move(model), bo);
    };
    o.sweep = {1, 3, 16, T};
    o.sweep_device = "cuda";
    o.sweep_dtype = "f32";
    const CompareResult r = compare(m, ids, o);
    ASSERT_EQ(r.runs.size(), 5u);
    for (const RunReport& run : r.runs) {
      SCOPED_TRACE(run.spec.name);
      // as FixturesLogitsMatchFloat64Reference: f32 to 1e-4; bf16 / f16 activations add ~1e-2
      const bool low = run.spec.dtype != "f32";
      const double tol = low ? 1e-1 : 1e-4;
      for (int64_t l = 0; l < r.L; ++l) {
        const double e = run.vs_ref.max_err(l, r.T);
        EXPECT_FALSE(std::isnan(e)) << "no layer outputs from " << run.backend;
        EXPECT_GT(e, 1e-9);
        EXPECT_LE(e, tol) << "layer " << l;
      }
      EXPECT_LE(run.vs_ref.max_state_err(), tol);
      EXPECT_LE(run.max_logit_err(), low ? 4e-2 : 1e-4);
      EXPECT_GE(run.top1_agree(), low ? 0.5 : 1.0);
      EXPECT_GT(run.seconds, 0);
      EXPECT_EQ(run.flops.total(), forward_flops(m->config, T, run.spec.scan, r.chunk_size, 1).total());
      if (run.spec.device == "cuda") {
        EXPECT_TRUE(run.layer_seconds.empty());  // no per-layer clock off the CPU
      }
      std::printf("  %-14s %-10s layers %.2e  state %.2e  logits %.2e  KL %.2e  top-1 %.2f\n", name, run.spec.name.c_str(),
                  run.vs_ref.max_err(r.L - 1, r.T), run.vs_ref.max_state_err(), run.max_logit_err(), run.kl_mean(), run.top1_agree());
    }
    ASSERT_EQ(r.sweep.size(), 4u);
    for (const SweepPoint& p : r.sweep) {
      EXPECT_LE(p.max_rel_err, 1e-4) << "Q = " << p.chunk_size;
      EXPECT_GT(p.max_rel_err, 0) << "Q = " << p.chunk_size;
      EXPECT_EQ(p.flops.total(), forward_flops(m->config, T, ScanMode::Chunked, p.chunk_size, 1).total());
    }
    EXPECT_LE(r.sweep_recurrent.max_rel_err, 1e-4);
  }
}
