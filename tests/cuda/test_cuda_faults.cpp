// GPU out of memory at load and in the middle of a session: a mamba::Error that says so, nothing half-built,
// and the session goes on exactly where it was once memory is back. The memory is taken by a "hog"
// allocation of all but a few MB of what the device reports free.
#include <cuda_runtime_api.h>

#include <functional>
#include <string>

#include "engine/session.h"
#include "kernels/cuda_backend.h"
#include "tests/cuda/cuda_models.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_util.h"

using namespace mamba;
using namespace mamba::test;

namespace {

// Takes all but `leave` bytes of the device's free memory until destroyed.
class MemoryHog {
 public:
  explicit MemoryHog(size_t leave) {
    size_t free = 0, total = 0;
    CUDA_CHECK(cudaMemGetInfo(&free, &total));
    // the allocator's granularity: step down until an allocation of nearly everything succeeds
    for (size_t want = free > leave ? free - leave : 0; want > (size_t(1) << 20); want -= size_t(2) << 20) {
      if (cudaMalloc(&m_ptr, want) == cudaSuccess) break;
      (void)cudaGetLastError();
      m_ptr = nullptr;
    }
  }
  ~MemoryHog() {
    if (m_ptr) cudaFree(m_ptr);
  }
  bool holding() const { return m_ptr != nullptr; }

 private:
  void* m_ptr = nullptr;
};

GenerateOptions greedy(int64_t n) {
  GenerateOptions go;
  go.max_new_tokens = n;
  go.sampling.temperature = 0.f;
  go.stop_at_eos = false;
  return go;
}

std::vector<int32_t> prompt(int64_t n) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t(1 + (i * 37) % 500);
  return ids;
}

void expect_out_of_memory(const std::function<void()>& f, const char* what) {
  try {
    f();
    ADD_FAILURE() << what << ": no error with the GPU full";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("out of GPU memory", 0), 0u) << what << ": " << e.what();
  }
}

}  // namespace

TEST_F(CudaTest, OutOfMemoryAtLoadIsAnErrorAndLeavesNothingBehind) {
  auto m = medium(1);
  size_t free_before = 0, free_after = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_before, &total));
  {
    MemoryHog hog(size_t(1) << 20);
    ASSERT_TRUE(hog.holding());
    expect_out_of_memory([&] { gpu(m, "f32"); }, "load");
  }
  CUDA_CHECK(cudaMemGetInfo(&free_after, &total));
  // what the failed load had allocated was given back (the driver's own bookkeeping may move a few MB)
  EXPECT_GT(double(free_after), double(free_before) - 16e6);
  Session s(gpu(m, "f32"));  // and with memory back, the same load works
  EXPECT_EQ(s.generate(prompt(8), greedy(4)).ids.size(), 4u);
}

TEST_F(CudaTest, OutOfMemoryMidSessionLeavesTheSessionWhereItWas) {
  auto m = medium(1);
  Session s(gpu(m, "f32"));
  const auto first = s.generate(prompt(16), greedy(6)).ids;  // small workspaces only
  const auto tokens = s.tokens();
  const State before = s.state();
  const auto long_prompt = prompt(8192);  // needs a larger prefill workspace than the session has
  {
    MemoryHog hog(size_t(4) << 20);
    ASSERT_TRUE(hog.holding());
    expect_out_of_memory([&] { s.generate(long_prompt, greedy(4)); }, "prefill of 8192 tokens");
    EXPECT_EQ(s.tokens(), tokens);
    const State after = s.state();
    ASSERT_EQ(after.layers.size(), before.layers.size());
    for (size_t l = 0; l < after.layers.size(); ++l) {
      EXPECT_EQ(after.layers[l].ssm, before.layers[l].ssm) << "layer " << l;
      EXPECT_EQ(after.layers[l].conv, before.layers[l].conv) << "layer " << l;
    }
  }
  // With memory back the same call works, and gives what a session that never failed gives.
  const auto got = s.generate(long_prompt, greedy(4)).ids;
  Session fresh(gpu(m, "f32"));
  fresh.generate(prompt(16), greedy(6));
  EXPECT_EQ(fresh.generate(long_prompt, greedy(4)).ids, got);
  EXPECT_EQ(got.size(), 4u);
  (void)first;
}
