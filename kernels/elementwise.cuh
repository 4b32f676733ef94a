#pragma once
// Small element-wise helpers: row bias add, fp32 -> weight dtype conversion at upload, and a
// deterministic random fill for measuring ceilings (never time on zeros).
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "kernels/dtype.h"

namespace mamba {

// out[t * ld + r] += bias[r] for t < T, r < R
void launch_add_bias(float* out, int64_t ld, const float* bias, int64_t T, int64_t R, cudaStream_t s);

// dst[i] = (dtype) src[i], round to nearest even
void launch_convert_f32(const float* src, void* dst, DType dtype, int64_t n, cudaStream_t s);

// dst[i] = uniform in [-scale, scale) from a counter hash of (seed, i)
void launch_fill_random(void* dst, DType dtype, int64_t n, uint64_t seed, float scale, cudaStream_t s);

// False (with the reason) when this binary carries no kernel image the current GPU can run.
bool cuda_kernel_image_ok(std::string* why);

}  // namespace mamba
