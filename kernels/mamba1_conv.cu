#include <string>

#include "engine/error.h"
#include "kernels/cuda_check.h"
#include "kernels/dtype.cuh"
#include "kernels/mamba1_conv.cuh"

namespace mamba {

namespace {

// One thread per (t, c).
__global__ void mamba1_conv_kernel(Mamba1ConvParams p) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, t = blockIdx.y;
  if (c >= p.E) return;
  const int64_t W = p.K - 1;
  float acc = p.b ? p.b[c] : 0.f;
  for (int64_t k = 0; k < p.K; ++k) {
    const int64_t r = t + k - W;  // input time; negative reads the carried window
    const float v = r < 0 ? p.state[c * W + (W + r)] : p.in[r * p.ld_in + c];
    acc += p.w[c * p.K + k] * v;
  }
  p.out[t * p.E + c] = silu_f(acc);
}

// New window: the last K-1 inputs of [old window, in] (old entries survive when T < K-1).
__global__ void mamba1_conv_state_kernel(Mamba1ConvParams p) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= p.E) return;
  const int64_t W = p.K - 1;
  float win[64];
  for (int64_t k = 0; k < W; ++k) {
    const int64_t r = p.T - W + k;
    win[k] = r < 0 ? p.state[c * W + (W + r)] : p.in[r * p.ld_in + c];
  }
  for (int64_t k = 0; k < W; ++k) p.state[c * W + k] = win[k];
}

}  // namespace

void launch_mamba1_conv(const Mamba1ConvParams& p, cudaStream_t s) {
  if (p.T <= 0 || p.E <= 0) return;
  if (p.K < 1 || p.K > 65) throw Error("launch_mamba1_conv: conv kernel size " + std::to_string(p.K) + " is outside 1..65");
  const int threads = 128;
  const dim3 grid(static_cast<unsigned>((p.E + threads - 1) / threads), static_cast<unsigned>(p.T));
  mamba1_conv_kernel<<<grid, threads, 0, s>>>(p);
  CUDA_CHECK_LAUNCH("mamba1_conv_kernel");
  if (p.K > 1) {
    mamba1_conv_state_kernel<<<static_cast<unsigned>((p.E + threads - 1) / threads), threads, 0, s>>>(p);
    CUDA_CHECK_LAUNCH("mamba1_conv_state_kernel");
  }
}

}  // namespace mamba
