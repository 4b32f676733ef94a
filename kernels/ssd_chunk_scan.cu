#include "engine/error.h"
#include "kernels/dtype.cuh"
#include "kernels/launch.cuh"
#include "kernels/ssd_chunk_scan.cuh"

namespace mamba {

namespace {

constexpr int kMaskRows = 16;  // rows of one (chunk, head) matrix per block

// grid (ceil(Q / 256), ceil(Q / kMaskRows), chunk-head pairs (grid-stride)); thread = column j over
// kMaskRows rows i. Only j <= i is written: the upper triangle stays as SsdChunkedWorkspace::prepare
// zeroed it. Index arithmetic is per block, in 32 bits: this kernel is memory-bound only without it.
template <typename T>
__global__ void __launch_bounds__(256) ssd_decay_mask_kernel(SsdDecayMaskParams p) {
  pdl_wait();
  const unsigned Q = unsigned(p.Q), j = blockIdx.x * blockDim.x + threadIdx.x, i0 = blockIdx.y * kMaskRows;
  const unsigned i1 = min(Q, i0 + kMaskRows);
  if (j >= Q || j >= i1) return;  // every row of this tile is left of j: nothing to write
  const unsigned H = unsigned(p.H), hpg = unsigned(p.H / p.G), n_ch = unsigned(p.n_chunks) * H;
  for (unsigned ch = blockIdx.z; ch < n_ch; ch += gridDim.z) {
    const unsigned c = ch / H, h = ch - c * H, g = h / hpg;
    const int64_t t0 = int64_t(c) * Q;
    const float* csh = p.cs + int64_t(h) * p.T_pad + t0;
    const float cs_j = csh[j], dt_j = p.dt[int64_t(h) * p.T_pad + t0 + j];
    const float d_j = p.D ? p.D[h] : 0.f;
    const float* cb = p.cb + (int64_t(c) * p.G + g) * Q * Q;
    T* M = static_cast<T*>(p.M) + int64_t(ch) * Q * Q;
#pragma unroll 4
    for (unsigned i = max(i0, j); i < i1; ++i) {
      float v = cb[int64_t(i) * Q + j] * expf(csh[i] - cs_j) * dt_j;
      if (i == j) v += d_j;  // the D skip rides on the diagonal: y += D x comes out of the same GEMM
      M[int64_t(i) * Q + j] = from_f32<T>(v);
    }
  }
}

__global__ void __launch_bounds__(256) ssd_scale_rows_kernel(SsdScaleRowsParams p) {
  pdl_wait();
  const int64_t t = blockIdx.y, HP = p.H * p.P;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < HP; i += int64_t(gridDim.x) * blockDim.x)
    p.y[t * p.ldy + i] *= expf(p.cs[(unsigned(i) / unsigned(p.P)) * p.T_pad + t]);
}

}  // namespace

void launch_ssd_decay_mask(const SsdDecayMaskParams& p, cudaStream_t s) {
  if (p.n_chunks <= 0) return;
  if (p.Q > 65535) throw Error("ssd: chunk size > 65535 is not supported");
  const dim3 grid(ceil_div(p.Q, 256), ceil_div(p.Q, kMaskRows), static_cast<unsigned>(std::min<int64_t>(p.n_chunks * p.H, 65535)));
  MAMBA_DTYPE_SWITCH(p.dtype, T, launch_kernel(ssd_decay_mask_kernel<T>, grid, dim3(256), 0, s, false, "ssd_decay_mask_kernel", p));
}

void launch_ssd_scale_rows(const SsdScaleRowsParams& p, cudaStream_t s) {
  if (p.T_pad <= 0) return;
  const dim3 grid(std::min<unsigned>(ceil_div(p.H * p.P, 256), 32u), static_cast<unsigned>(p.T_pad));
  launch_kernel(ssd_scale_rows_kernel, grid, dim3(256), 0, s, false, "ssd_scale_rows_kernel", p);
}

}  // namespace mamba
