#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "dtype.cuh"
#include "gemv.cuh"
#include "launch.cuh"

namespace mamba {

namespace {
constexpr int kWarps = 8;

// Dot of one 16-byte weight vector with the matching floats of xin (shared memory, 16-byte aligned).
__device__ __forceinline__ float dot16(const uint4& v, const float* x, float*) {
  const float4 a = *reinterpret_cast<const float4*>(&v);
  const float4 b = *reinterpret_cast<const float4*>(x);
  return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
}
template <typename H2, typename F>
__device__ __forceinline__ float dot16_half2(const uint4& v, const float* x, F to_float2) {
  const H2* w = reinterpret_cast<const H2*>(&v);
  const float4 x0 = *reinterpret_cast<const float4*>(x), x1 = *reinterpret_cast<const float4*>(x + 4);
  const float2 f0 = to_float2(w[0]), f1 = to_float2(w[1]), f2 = to_float2(w[2]), f3 = to_float2(w[3]);
  return f0.x * x0.x + f0.y * x0.y + f1.x * x0.z + f1.y * x0.w + f2.x * x1.x + f2.y * x1.y + f3.x * x1.z + f3.y * x1.w;
}
__device__ __forceinline__ float dot16(const uint4& v, const float* x, __nv_bfloat16*) {
  return dot16_half2<__nv_bfloat162>(v, x, [](__nv_bfloat162 h) { return __bfloat1622float2(h); });
}
__device__ __forceinline__ float dot16(const uint4& v, const float* x, __half*) {
  return dot16_half2<__half2>(v, x, [](__half2 h) { return __half22float2(h); });
}

// xin = x * w / rms(x) over each of `groups` contiguous groups. Loads go out in batches of 8 per thread
// (x and w together) so the prologue costs one memory round trip, not one per loop iteration.
__device__ __forceinline__ void prologue(const GemvParams& p, int64_t groups, float* xin, float* scratch) {
  constexpr int B = 8;
  const int64_t gs = p.K / groups;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t k_begin = g * gs, k_end = k_begin + gs;
    float ss = 0.f;
    for (int64_t k0 = k_begin + threadIdx.x; k0 < k_end; k0 += B * int64_t(blockDim.x)) {
      float a[B], w[B];
#pragma unroll
      for (int u = 0; u < B; ++u) {
        const int64_t k = k0 + int64_t(u) * blockDim.x;
        a[u] = k < k_end ? p.x[k] : 0.f;
        w[u] = k < k_end ? p.norm_w[k] : 0.f;
      }
#pragma unroll
      for (int u = 0; u < B; ++u) {
        const int64_t k = k0 + int64_t(u) * blockDim.x;
        ss += a[u] * a[u];
        if (k < k_end) xin[k] = a[u] * w[u];
      }
    }
    ss = block_sum(ss, scratch);
    const float r = rsqrtf(ss / float(gs) + p.eps);
    for (int64_t k = k_begin + threadIdx.x; k < k_end; k += blockDim.x) xin[k] *= r;  // this thread's own elements
  }
  __syncthreads();
}

// Each warp owns groups of RPW consecutive rows (grid-stride, so the grid never exceeds one wave);
// a lane streams 8 16-byte vectors per batch (RPW rows x U columns-vectors).
template <typename Wt, int RPW, bool GATED, bool VEC>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(GemvParams p) {
  constexpr int U = 8 / RPW;
  constexpr int EPV = 16 / int(sizeof(Wt));
  extern __shared__ __align__(16) float xin[];
  const int64_t K = p.K, R = p.R;
  float* scratch = xin + ((K + 3) & ~int64_t(3));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t n_groups = (R + RPW - 1) / RPW, stride = int64_t(gridDim.x) * kWarps;
  int64_t grp = int64_t(blockIdx.x) * kWarps + warp;
  const Wt* W = static_cast<const Wt*>(p.W);
  const int64_t nvec = VEC ? K / EPV : 0;
  const uint4* W4 = reinterpret_cast<const uint4*>(W);

  auto rows_of = [&](int64_t gi) { return gi < n_groups ? int(imin(RPW, R - gi * RPW)) : 0; };
  uint4 v[RPW][U];
  auto load_batch = [&](int64_t gi, int nrows, int64_t base) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t idx = base + u * 32 + lane;
#pragma unroll
      for (int r = 0; r < RPW; ++r)
        v[r][u] = (idx < nvec && r < nrows) ? __ldg(W4 + (gi * RPW + r) * nvec + idx) : make_uint4(0, 0, 0, 0);
    }
  };

  // Weights do not depend on the previous kernel: start streaming them before waiting for it, and
  // before this block's normalisation prologue.
  int nrows = rows_of(grp);
  if (lane == 0 && nrows > 0 && p.prefetch_budget_bytes > 0) {
    const int64_t mine = imin(int64_t(nrows) * K * int64_t(sizeof(Wt)), p.prefetch_budget_bytes / (int64_t(gridDim.x) * kWarps));
    prefetch_l2_bulk(W + grp * RPW * K, unsigned(imin(mine, int64_t(1) << 30)));
  }
  if (VEC && nrows > 0) load_batch(grp, nrows, 0);
  bool preloaded = VEC && nrows > 0;
  pdl_launch_dependents();
  pdl_wait();
  prologue(p, GATED ? p.groups : 1, xin, scratch);

  for (; grp < n_groups; grp += stride, nrows = rows_of(grp)) {
    float acc[RPW];
#pragma unroll
    for (int r = 0; r < RPW; ++r) acc[r] = 0.f;
    if constexpr (VEC) {
      for (int64_t base = 0; base < nvec; base += 32 * U) {
        if (!preloaded) load_batch(grp, nrows, base);
        preloaded = false;
#pragma unroll
        for (int u = 0; u < U; ++u) {
          const int64_t idx = base + u * 32 + lane;
          if (idx < nvec) {
            const float* xs = xin + idx * EPV;
#pragma unroll
            for (int r = 0; r < RPW; ++r) acc[r] += dot16(v[r][u], xs, static_cast<Wt*>(nullptr));
          }
        }
      }
    } else {
      for (int64_t k = lane; k < K; k += 32) {
        const float xk = xin[k];
#pragma unroll
        for (int r = 0; r < RPW; ++r)
          if (r < nrows) acc[r] += to_f32(W[(grp * RPW + r) * K + k]) * xk;
      }
    }
#pragma unroll
    for (int r = 0; r < RPW; ++r) {
      const float sum = warp_sum(acc[r]);
      if (lane == 0 && r < nrows) {
        const int64_t row = grp * RPW + r;
        p.out[row] = (p.accumulate ? p.out[row] : 0.f) + sum + (p.bias ? p.bias[row] : 0.f);
      }
    }
  }
}

int sm_count() {
  static int n = [] {
    int dev = 0, v = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
    return v;
  }();
  return n;
}

template <typename Wt, int RPW, bool GATED, bool VEC>
void launch_one(const GemvParams& p, cudaStream_t s, bool pdl) {
  auto kernel = gemv_kernel<Wt, RPW, GATED, VEC>;
  const size_t smem = sizeof(float) * size_t(((p.K + 3) & ~int64_t(3)) + 32);
  if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  // One wave at most: every block resident at once, so a PDL successor is never starved of slots
  // by a tail wave and the grid-stride loop balances the rows.
  int per_sm = 0;
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kWarps * 32, smem));
  const int64_t needed = ceil_div(p.R, int64_t(kWarps) * RPW);
  const int64_t grid = std::max<int64_t>(1, std::min<int64_t>(needed, int64_t(std::max(per_sm, 1)) * sm_count()));
  launch_kernel(kernel, dim3(static_cast<unsigned>(grid)), dim3(kWarps * 32), smem, s, pdl, "gemv_kernel", p);
}

template <typename Wt, bool GATED, bool VEC>
void launch_rpw(const GemvParams& p, cudaStream_t s, bool pdl) {
  // Several rows per warp share the prologue's cost, but only while the grid still covers every SM twice.
  const int64_t target = 2 * int64_t(sm_count());
  if (int64_t(ceil_div(p.R, kWarps * 4)) >= target) launch_one<Wt, 4, GATED, VEC>(p, s, pdl);
  else if (int64_t(ceil_div(p.R, kWarps * 2)) >= target) launch_one<Wt, 2, GATED, VEC>(p, s, pdl);
  else launch_one<Wt, 1, GATED, VEC>(p, s, pdl);
}

template <typename Wt>
void launch_typed(const GemvParams& p, cudaStream_t s, bool pdl) {
  constexpr int EPV = 16 / int(sizeof(Wt));
  const bool vec = p.K % EPV == 0 && (reinterpret_cast<uintptr_t>(p.W) & 15) == 0;
  const bool gated = p.prologue == GemvPrologue::GroupRmsNorm;
  if (gated) {
    if (vec) launch_rpw<Wt, true, true>(p, s, pdl);
    else launch_rpw<Wt, true, false>(p, s, pdl);
  } else {
    if (vec) launch_rpw<Wt, false, true>(p, s, pdl);
    else launch_rpw<Wt, false, false>(p, s, pdl);
  }
}
}  // namespace

void launch_gemv(const GemvParams& p, cudaStream_t s, bool pdl) {
  if (p.R <= 0) return;
  MAMBA_DTYPE_SWITCH(p.wdtype, Wt, launch_typed<Wt>(p, s, pdl));
}

}  // namespace mamba
