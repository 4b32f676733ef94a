// The SSD matrix from the GPU's own forward (ForwardOptions::capture on the CUDA backend): the captured
// layer equals the CPU's, and M x + D x reproduces the GPU's scan output to its rounding.
#include <cmath>

#include "engine/backend.h"
#include "engine/ssd_matrix.h"
#include "kernels/cuda_backend.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_util.h"

using namespace mamba;
using namespace mamba::test;

namespace {
double rel(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}
}  // namespace

TEST_F(CudaTest, MatrixCaptureMatchesCpuAndTheDualityHolds) {
  for (const auto& dir : model_fixture_dirs()) {
    SCOPED_TRACE(dir.filename().string());
    auto m = Model::load(dir.string());
    const Config& c = m->config;
    const auto ids = random_ids(37, c.vocab_size, 12);  // longer than the fixtures' chunks
    const int64_t layer = c.n_layer - 1;
    const LayerCapture cpu = capture_layer(m, ids, layer);
    for (const char* dt : {"f32", "bf16"}) {
      BackendOptions bo;
      bo.dtype = dt;
      auto gpu = make_cuda_backend(m, bo);
      const LayerCapture g = capture_layer(*gpu, ids, layer);
      ASSERT_EQ(g.T, cpu.T);
      const double tol = std::string(dt) == "f32" ? 1e-5 : 5e-2;
      EXPECT_LE(rel(g.x, cpu.x), tol) << dt;
      EXPECT_LE(rel(g.B, cpu.B), tol) << dt;
      EXPECT_LE(rel(g.dt, cpu.dt), tol) << dt;
      EXPECT_LE(rel(g.y, cpu.y), tol) << dt;
      // the duality on the GPU's own values: M from its x, B, C, dt reproduces its scan (float32 state)
      const SsdMatrix M = ssd_matrix(g, c, m->weights.layers[size_t(layer)], c.n_heads - 1);
      const double err = duality_rel_err(M, g, c);
      std::printf("  matrix %-26s %s: capture vs cpu y %.1e, duality %.1e\n", dir.filename().string().c_str(), dt, rel(g.y, cpu.y), err);
      EXPECT_LE(err, 1e-5) << dt;
    }
  }
}
