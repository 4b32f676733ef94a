#pragma once
// Sampling on the GPU so only the chosen id crosses the bus: temperature, top-k, top-p, min-p over
// the first n logits, with one uniform draw from the host's RNG (the Session keeps the RNG state).
// Temperature 0 is argmax (lowest id on ties, as std::max_element). The kept set is {q >= tau} with
// q = exp((l - max) / temperature): tau is found by bisection over q's bits as the largest value whose
// "q >= tau" set holds top_k ids or top_p of the mass; ties at tau are all kept, the only difference
// from the CPU sampler's sorted cut. Within the kept set the draw walks ids in index
// order (a different but equally valid inverse-CDF order than the CPU's descending one).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace mamba {

// Read from device memory so a captured decode graph can take new settings each step.
struct SampleConfig {
  int64_t n = 0;      // candidates: ids < n
  float temperature = 0.f;
  int32_t top_k = 0;  // 0 = off
  float top_p = 1.f;  // 1 = off
  float min_p = 0.f;  // 0 = off
  float u = 0.f;      // uniform in [0, 1)
};

// The argmax runs over kSampleBlocks blocks; the last one to finish merges their results and, unless the
// temperature is 0, goes on to sample alone. `ws` holds their results and an arrival counter (zero between
// calls: the last block resets it).
constexpr int kSampleBlocks = 32;
struct SampleWorkspace {
  float v[kSampleBlocks];
  int64_t i[kSampleBlocks];
  unsigned arrived;
};

struct SampleParams {
  const float* logits = nullptr;     // (>= cfg->n) on the device
  const SampleConfig* cfg = nullptr;  // on the device
  int32_t* out = nullptr;            // (1) on the device
  SampleWorkspace* ws = nullptr;     // on the device, zeroed once
};

// pdl: may start while the kernel before it (the LM head) finishes.
void launch_sample(const SampleParams& p, cudaStream_t s, bool pdl = false);

}  // namespace mamba
