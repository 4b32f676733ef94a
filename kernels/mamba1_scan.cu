#include <string>

#include "engine/error.h"
#include "kernels/cuda_check.h"
#include "kernels/dtype.cuh"
#include "kernels/mamba1_scan.cuh"

namespace mamba {

namespace {

constexpr int kLanes = 16;     // lanes per channel; each holds N / kLanes state entries
constexpr int kMaxPer = 8;     // N <= kLanes * kMaxPer
constexpr int kThreads = 128;  // 8 channels per block

template <typename Y>
__global__ void mamba1_scan_kernel(Mamba1ScanParams p) {
  const int lane = threadIdx.x % kLanes;
  const int64_t c = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / kLanes;
  const bool active = c < p.E;
  const int64_t cc = active ? c : 0;  // inactive lanes still join the shuffles
  const int per = static_cast<int>((p.N + kLanes - 1) / kLanes);
  float h[kMaxPer], a[kMaxPer];
#pragma unroll
  for (int i = 0; i < kMaxPer; ++i) {
    const int64_t n = lane + int64_t(i) * kLanes;
    const bool ok = active && i < per && n < p.N;
    h[i] = ok ? p.state[cc * p.N + n] : 0.f;
    a[i] = ok ? p.A[cc * p.N + n] : 0.f;
  }
  const float bias = p.dt_bias[cc], dskip = p.D[cc];
  for (int64_t t = 0; t < p.T; ++t) {
    const float dt = softplus_clamp(p.dt_raw[t * p.E + cc] + bias, 0.f, INFINITY);
    const float x = p.x[t * p.E + cc];
    const float* B = p.B + t * p.ldbc;
    const float* C = p.C + t * p.ldbc;
    float acc = 0.f, sq = 0.f;
#pragma unroll
    for (int i = 0; i < kMaxPer; ++i) {
      const int64_t n = lane + int64_t(i) * kLanes;
      if (i < per && n < p.N) {
        h[i] = __expf(dt * a[i]) * h[i] + dt * B[n] * x;
        acc += h[i] * C[n];
        sq += h[i] * h[i];
      }
    }
#pragma unroll
    for (int off = kLanes / 2; off > 0; off /= 2) {
      acc += __shfl_xor_sync(0xffffffffu, acc, off, kLanes);
      sq += __shfl_xor_sync(0xffffffffu, sq, off, kLanes);
    }
    if (active && lane == 0) {
      const float y = acc + dskip * x;
      static_cast<Y*>(p.y)[t * p.E + c] = from_f32<Y>(y * silu_f(p.z[t * p.ldz + c]));
      if (p.dt_out) p.dt_out[t * p.E + c] = dt;
      if (p.y_pre) p.y_pre[t * p.E + c] = y;
      if (p.state_sq) p.state_sq[t * p.E + c] = sq;
    }
  }
#pragma unroll
  for (int i = 0; i < kMaxPer; ++i) {
    const int64_t n = lane + int64_t(i) * kLanes;
    if (active && i < per && n < p.N) p.state[c * p.N + n] = h[i];
  }
}

}  // namespace

void launch_mamba1_scan(const Mamba1ScanParams& p, cudaStream_t s) {
  if (p.T <= 0 || p.E <= 0) return;
  if (p.N < 1 || p.N > kLanes * kMaxPer) throw Error("launch_mamba1_scan: d_state " + std::to_string(p.N) + " is outside 1..128");
  const unsigned blocks = static_cast<unsigned>((p.E * kLanes + kThreads - 1) / kThreads);
  switch (p.y_dtype) {
    case DType::F32: mamba1_scan_kernel<float><<<blocks, kThreads, 0, s>>>(p); break;
    case DType::BF16: mamba1_scan_kernel<__nv_bfloat16><<<blocks, kThreads, 0, s>>>(p); break;
    case DType::F16: mamba1_scan_kernel<__half><<<blocks, kThreads, 0, s>>>(p); break;
  }
  CUDA_CHECK_LAUNCH("mamba1_scan_kernel");
}

}  // namespace mamba
