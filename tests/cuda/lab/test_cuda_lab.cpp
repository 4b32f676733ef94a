// The lab build's measurement (mamba_cuda_lab): a traced decode step's timeline is ordered and tracing
// changes no result. Built on request (cmake --build build --target cuda_lab_tests); the device script runs it.
#include "engine/backend.h"
#include "engine/model.h"
#include "kernels/cuda_backend_impl.h"
#include "tests/cuda/cuda_models.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_util.h"

using namespace mamba;
using namespace mamba::test;

TEST_F(CudaTest, DecodeTraceIsOrderedAndChangesNothing) {
  auto m = medium(1);
  const int64_t V = m->config.vocab_size, L = m->config.n_layer;
  auto ids = random_ids(12, V, 8);
  std::vector<float> plain(static_cast<size_t>(V)), traced(static_cast<size_t>(V));
  for (bool trace : {false, true}) {
    auto bp = gpu(m, "bf16");
    auto& b = dynamic_cast<CudaBackend&>(*bp);
    ForwardOptions fo;
    std::vector<float> logits(static_cast<size_t>(V));
    b.forward(std::span<const int32_t>(ids.data(), 10), fo, logits.data());
    if (trace) {
      b.set_decode_trace(true);
      b.step(ids[10], logits.data());
      const std::vector<uint64_t> t = b.decode_trace_step();  // decodes token 1 (a fixed probe token)
      const int S = kTraceSlots;
      ASSERT_EQ(t.size(), size_t(S * (3 * L + 1)));
      // One kernel per layer (on for this shape) uses each layer's first slot and the last layer's second
      // (the finish kernel); the others stay empty.
      ASSERT_TRUE(b.decode_fused());
      int64_t prev = -1, launched = 0;
      for (int64_t k = 0; k < 3 * L + 1; ++k) {
        const uint64_t* e = t.data() + S * k;
        const bool used = k % 3 == 0 || k == 3 * (L - 1) + 1;
        if (!used) {
          EXPECT_EQ(e[3], 0u) << "kernel slot " << k;
          continue;
        }
        ++launched;
        EXPECT_TRUE(e[0] <= e[1] && e[1] <= e[2] && e[2] <= e[3]) << "kernel " << k;
        // A kernel only gets past its wait once the kernel before it has finished (1 us of slack for the timer).
        if (prev >= 0) {
          EXPECT_GE(e[1] + 1000, t[size_t(S * prev + 3)]) << "kernel " << k;
        }
        for (int j : {4, 6, 7}) EXPECT_TRUE(e[j] == 0 || (e[2] <= e[j] && e[j] <= e[3])) << "kernel " << k << " mark " << j;
        EXPECT_TRUE(e[5] == 0 || (e[0] <= e[5] && e[5] <= e[3])) << "kernel " << k << " mark 5";  // the layer kernel's last start
        prev = k;
      }
      EXPECT_EQ(launched, L + 2);
      b.step(ids[11], traced.data());
    } else {
      b.step(ids[10], logits.data());
      b.step(1, logits.data());
      b.step(ids[11], plain.data());
    }
  }
  EXPECT_EQ(plain, traced) << "tracing must not change results";
}
