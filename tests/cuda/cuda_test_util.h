#pragma once
// Helpers for the CUDA tests: skip without a GPU, move vectors to and from the device, poison outputs.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda_backend.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_memory.h"
#include "kernels/dtype.h"

namespace mamba::test {

inline bool have_gpu(std::string* why = nullptr) {
  static std::string reason;
  static const bool ok = cuda_device_available(&reason);
  if (why) *why = reason;
  return ok;
}

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!have_gpu(&why)) GTEST_SKIP() << "no usable GPU: " << why;
  }
};

template <typename T>
DeviceBuffer to_dev(const std::vector<T>& v) {
  DeviceBuffer b(sizeof(T) * std::max<size_t>(v.size(), 1));
  if (!v.empty()) CUDA_CHECK(cudaMemcpy(b.get(), v.data(), sizeof(T) * v.size(), cudaMemcpyHostToDevice));
  return b;
}

// Device copy of `v` in dtype `dt` (rounded to nearest even), and the rounded values back on the host.
inline DeviceBuffer to_dev_as(const std::vector<float>& v, DType dt, std::vector<float>* rounded = nullptr) {
  if (rounded) rounded->resize(v.size());
  if (dt == DType::F32) {
    if (rounded) *rounded = v;
    return to_dev(v);
  }
  if (dt == DType::BF16) {
    std::vector<__nv_bfloat16> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      h[i] = __float2bfloat16_rn(v[i]);
      if (rounded) (*rounded)[i] = __bfloat162float(h[i]);
    }
    return to_dev(h);
  }
  std::vector<__half> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    h[i] = __float2half_rn(v[i]);
    if (rounded) (*rounded)[i] = __half2float(h[i]);
  }
  return to_dev(h);
}

inline std::vector<float> from_dev(const DeviceBuffer& b, size_t n, DType dt = DType::F32) {
  std::vector<float> out(n);
  if (dt == DType::F32) {
    CUDA_CHECK(cudaMemcpy(out.data(), b.get(), sizeof(float) * n, cudaMemcpyDeviceToHost));
  } else if (dt == DType::BF16) {
    std::vector<__nv_bfloat16> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), b.get(), 2 * n, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; ++i) out[i] = __bfloat162float(h[i]);
  } else {
    std::vector<__half> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), b.get(), 2 * n, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; ++i) out[i] = __half2float(h[i]);
  }
  return out;
}

// An output buffer filled with NaN bytes, so any element the kernel fails to write shows up.
inline DeviceBuffer poisoned(size_t bytes) {
  DeviceBuffer b(std::max<size_t>(bytes, 4));
  CUDA_CHECK(cudaMemset(b.get(), 0xff, b.bytes()));
  return b;
}

inline void sync_check() { CUDA_CHECK(cudaDeviceSynchronize()); }

inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.f, float offset = 0.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = offset + scale * d(rng);
  return v;
}

inline std::vector<float> uniform(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline double rel_err_v(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(a[i]) - ref[i];
    num += d * d;
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

inline double tol_for(DType dt, double f32_tol) { return dt == DType::F32 ? f32_tol : 2e-2; }

}  // namespace mamba::test
