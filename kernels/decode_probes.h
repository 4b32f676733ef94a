#pragma once
// Probe values of one decode step as the decode kernels leave them on the device (the definitions are
// engine/probes.h's). Per layer stride() floats: dt (H) | the residual's sum of squares (1) | per head `parts`
// partial sums of squares of the head's state after the step | per head `parts` partial sums of squares of its
// ungated outputs y + D x. A part is the rows of the head one block owns; deliver_decode_probes adds them.
#include <cstdint>

#ifdef __CUDACC__
#define MAMBA_HD __host__ __device__
#else
#define MAMBA_HD
#endif

namespace mamba {

struct ProbeSink;

struct DecodeProbeLayout {
  int64_t H = 0, parts = 0;
  MAMBA_HD int64_t dt() const { return 0; }
  MAMBA_HD int64_t resid() const { return H; }
  MAMBA_HD int64_t state(int64_t h, int64_t part) const { return H + 1 + h * parts + part; }
  MAMBA_HD int64_t y(int64_t h, int64_t part) const { return H + 1 + (H + h) * parts + part; }
  MAMBA_HD int64_t stride() const { return H + 1 + 2 * H * parts; }
};

// `steps` consecutive decode steps of raw values, (steps, L, stride) from `raw`, as one LayerProbe per layer
// covering positions [first, first + steps).
void deliver_decode_probes(const DecodeProbeLayout& lay, int64_t L, const float* raw, int64_t steps, int64_t first, ProbeSink& sink);

}  // namespace mamba

#undef MAMBA_HD
