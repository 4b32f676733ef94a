#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "engine/error.h"
#include "kernels/dtype.cuh"
#include "kernels/gemv.cuh"
#include "kernels/lab.cuh"
#include "kernels/launch.cuh"
#include "kernels/vec16.cuh"

namespace mamba {

namespace {
constexpr int kWarps = 8;
constexpr int kScratch = 64;  // floats of shared scratch: block_sum's 32, then up to 32 norm-group sums

// The GEMV's prologue, xin = rmsnorm(x) * norm_w over each of `groups` contiguous groups: plain RMSNorm
// (in_proj, LM head) or grouped (out_proj). A template parameter, so each kernel carries only its own.
constexpr int kPlain = 0, kGrouped = 1;

// The fast form: float4 loads, every group a multiple of 4 floats, at most 32 groups. norm_w does not
// depend on the previous kernel, so it is copied into xin before the PDL wait (stage_norm_w); after the
// wait, x is loaded in one round trip (prologue).
__device__ __forceinline__ bool prologue_vec(const GemvParams& p, int64_t groups) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p.x) | reinterpret_cast<uintptr_t>(p.norm_w);
  return (a & 15) == 0 && groups <= 32 && (p.K / groups) % 4 == 0;
}

// Before the wait. scratch: 32 floats for block_sum, then `groups` per-group sums (zeroed here).
__device__ __forceinline__ void stage_norm_w(const GemvParams& p, int64_t groups, float* xin, float* scratch) {
  if (!prologue_vec(p, groups)) return;
  for (int64_t c = threadIdx.x; c < p.K / 4; c += blockDim.x) cp_async16(xin + 4 * c, p.norm_w + 4 * c);
  cp_async_commit();
  if (groups > 1) {
    if (threadIdx.x < groups) scratch[32 + threadIdx.x] = 0.f;
    __syncthreads();
  }
}

// After the wait. x comes either through registers, B float4 per thread per pass (the shared-memory
// kernel: K <= 2048, one pass at B = 2), or, when xraw is non-null, by cp.async into it (K floats of
// shared memory; the streaming kernel, whose registers hold its first weight batches). PENDING: cp.async
// groups committed after stage_norm_w's that may stay in flight (the shared-memory kernel's weight
// slice); 0 with xraw. Returns the factor the caller multiplies its dot products by: with one group the
// 1/rms scale is applied to the results, not to xin (one pass and a barrier fewer); with several it is
// applied to xin here and the factor is 1.
template <int PENDING, int B>
__device__ __forceinline__ float prologue(const GemvParams& p, int64_t groups, float* xin, float* xraw, float* scratch) {
  const int64_t K = p.K, gs = K / groups;
  if (prologue_vec(p, groups)) {
    const int64_t K4 = K / 4, bd = blockDim.x;
    const unsigned gs4 = unsigned(gs);  // 32-bit group index math (a 64-bit division is a call)
    const float4* x4 = reinterpret_cast<const float4*>(p.x);
    const int lane = threadIdx.x & 31;
    if (xraw) {
      for (int64_t c = threadIdx.x; c < K4; c += bd) cp_async16(xraw + 4 * c, x4 + c);
      cp_async_commit();
      cp_async_wait_group<0>();  // only this thread's own chunks are read below
    }
    float ss = 0.f;
    for (int64_t c0 = threadIdx.x; c0 - lane < K4; c0 += B * bd) {
      float4 a[B];
#pragma unroll
      for (int u = 0; u < B; ++u) {
        const int64_t c = c0 + u * bd;
        a[u] = c >= K4 ? make_float4(0.f, 0.f, 0.f, 0.f) : xraw ? lds_f4(xraw + 4 * c) : x4[c];
      }
      if (!xraw) cp_async_wait_group<PENDING>();  // this thread's own norm_w chunks are in xin
#pragma unroll
      for (int u = 0; u < B; ++u) {
        const int64_t c = c0 + u * bd;
        float s = a[u].x * a[u].x + a[u].y * a[u].y + a[u].z * a[u].z + a[u].w * a[u].w;
        if (c < K4) {
          const float4 w = lds_f4(xin + 4 * c);
          reinterpret_cast<float4*>(xin)[c] = make_float4(a[u].x * w.x, a[u].y * w.y, a[u].z * w.z, a[u].w * w.w);
        }
        if (groups == 1) {
          ss += s;
        } else if (c - lane < K4) {
          // A warp's 32 chunks in one group (every real shape: groups of a multiple of 128 floats): one
          // shared atomic per warp; otherwise one per lane.
          const unsigned g_lo = unsigned(4 * (c - lane)) / gs4, g_hi = unsigned(4 * imin(c - lane + 31, K4 - 1)) / gs4;
          if (g_lo == g_hi) {
            s = warp_sum(s);
            if (lane == 0) atomicAdd(scratch + 32 + g_lo, s);
          } else if (c < K4) {
            atomicAdd(scratch + 32 + unsigned(4 * c) / gs4, s);
          }
        }
      }
    }
    if (groups == 1) {
      ss = block_sum(ss, scratch);  // its barriers also publish xin
      return rsqrtf(ss / float(K) + p.eps);
    }
    __syncthreads();
    for (int64_t c = threadIdx.x; c < K4; c += bd) {
      const float r = rsqrtf(scratch[32 + unsigned(4 * c) / gs4] / float(gs) + p.eps);
      float4* q = reinterpret_cast<float4*>(xin) + c;
      const float4 v = *q;
      *q = make_float4(v.x * r, v.y * r, v.z * r, v.w * r);
    }
    __syncthreads();
    return 1.f;
  }
  // Any shape: loads in batches of 8 per thread (x and w together), one round trip per batch.
  constexpr int S = 8;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t k_begin = g * gs, k_end = k_begin + gs;
    float ss = 0.f;
    for (int64_t k0 = k_begin + threadIdx.x; k0 < k_end; k0 += S * int64_t(blockDim.x)) {
      float a[S], w[S];
#pragma unroll
      for (int u = 0; u < S; ++u) {
        const int64_t k = k0 + int64_t(u) * blockDim.x;
        a[u] = k < k_end ? p.x[k] : 0.f;
        w[u] = k < k_end ? p.norm_w[k] : 0.f;
      }
#pragma unroll
      for (int u = 0; u < S; ++u) {
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
  return 1.f;
}

// The argmax kernel (GemvParams::argmax_ws), at the end: each block's argmax (lane 0 of each warp holds its
// warp's) to the workspace; the last block to arrive merges them and emits the id.
__device__ void argmax_finish(const GemvParams& p, float bv, int64_t bi) {
  __shared__ float wv[kWarps];
  __shared__ int64_t wi[kWarps];
  __shared__ bool last;
  ArgmaxWorkspace* ws = p.argmax_ws;
  block_argmax(bv, bi, wv, wi);
  if (grid_argmax_last(bv, bi, ws->v, ws->i, &ws->arrived, wv, wi, &last) && threadIdx.x == 0) sample_emit(p.argmax, bi);
}

// Each warp owns groups of RPW consecutive rows (grid-stride, so the grid never exceeds one wave). Its
// work is a sequence of batches (row group, column block): a lane loads RPW rows x U 16-byte vectors per
// batch. DEPTH batches are in registers or in flight at once: the first DEPTH are loaded before the PDL
// wait, and each batch's registers are refilled with the batch DEPTH ahead as soon as it is consumed.
// ARG: the argmax kernel (GemvParams::argmax_ws).
template <typename Wt, int RPW, int PRO, bool VEC, int DEPTH, int BATCH, bool ARG>
__device__ __forceinline__ void gemv_body(GemvParams p) {
  constexpr int U = BATCH / RPW > 0 ? BATCH / RPW : 1;
  constexpr int EPV = 16 / int(sizeof(Wt));
  extern __shared__ __align__(16) float xin[];
  const int64_t K = p.K, R = p.R, groups = PRO == kGrouped ? p.groups : 1;
  float* xraw = xin + ((K + 3) & ~int64_t(3));  // (K) x as loaded
  float* scratch = xraw + ((K + 3) & ~int64_t(3));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t n_groups = (R + RPW - 1) / RPW, stride = int64_t(gridDim.x) * kWarps;
  const int64_t grp0 = int64_t(blockIdx.x) * kWarps + warp;
  const Wt* W = static_cast<const Wt*>(p.W);
  const int64_t nvec = VEC ? K / EPV : 0;
  const uint4* W4 = reinterpret_cast<const uint4*>(W);
  auto rows_of = [&](int64_t gi) { return gi < n_groups ? int(imin(RPW, R - gi * RPW)) : 0; };

  lab_trace_start(p.lab);
  // ARG: whether the chain has halted this step (*live was written at least two kernels back, by an earlier
  // step's LM head); loaded here, looked at after the prologue, before the first store.
  const int live = ARG && p.argmax.chain.live ? __ldcg(p.argmax.chain.live) : 0;
  stage_norm_w(p, groups, xin, scratch);
  if constexpr (VEC) {
    // Batch t of this warp: row group grp0 + (t / nb) * stride, columns from (t % nb) * 32 * U.
    const int64_t nb = (nvec + 32 * U - 1) / (32 * U);
    const int64_t n_batches = grp0 < n_groups ? ((n_groups - 1 - grp0) / stride + 1) * nb : 0;
    uint4 v[DEPTH][RPW][U];
    const uint64_t pol = l2_policy_normal();
    int64_t ld_grp = grp0, ld_base = 0;  // the next batch to load
    auto load_next = [&](uint4(&buf)[RPW][U]) {
      const int nrows = rows_of(ld_grp);
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int64_t idx = ld_base + u * 32 + lane;
#pragma unroll
        for (int r = 0; r < RPW; ++r)
          buf[r][u] = (idx < nvec && r < nrows) ? ldg_stream(W4 + (ld_grp * RPW + r) * nvec + idx, pol) : make_uint4(0, 0, 0, 0);
      }
      ld_base += 32 * U;
      if (ld_base >= nvec) ld_base = 0, ld_grp += stride;
    };
    // Weights do not depend on the previous kernel: start loading them before waiting for it, then ask
    // L2 for the next layer's weights behind them.
#pragma unroll
    for (int d = 0; d < DEPTH; ++d)
      if (d < n_batches) load_next(v[d]);
    prefetch_l2_share(p.prefetch_next, p.prefetch_next_bytes);
    // When the next kernel may launch: GemvParams::trigger_*, or chain_trigger for the argmax kernel.
    if constexpr (ARG) {
      pdl_wait();
      if (lab_trigger(p.lab, kGemvTrigWaited, false)) pdl_launch_dependents();
    } else {
      if (lab_trigger(p.lab, kGemvTrigStart, p.trigger_at_start)) pdl_launch_dependents();
      pdl_wait();
      if (lab_trigger(p.lab, kGemvTrigWaited, !p.trigger_at_start)) pdl_launch_dependents();
    }
    lab_trace_waited(p.lab);
    const float scale = prologue<0, 1>(p, groups, xin, xraw, scratch);
    if constexpr (ARG)
      if (p.argmax.chain.live && p.argmax.chain.step >= live) return;  // the prologue's copies are in
    lab_trace_mark(p.lab, 4);
    if (lab_trigger(p.lab, kGemvTrigLoads, false) && n_batches <= DEPTH) pdl_launch_dependents();
    // ARG: lane 0's best (row, value) among its warp's rows.
    const int64_t n_arg = ARG ? p.argmax.cfg->n : 0;
    float best_v = -INFINITY;
    int64_t best_i = INT64_MAX;

    float acc[RPW];
#pragma unroll
    for (int r = 0; r < RPW; ++r) acc[r] = 0.f;
    int64_t grp = grp0, base = 0;  // the batch being consumed
    for (int64_t t = 0; t < n_batches; t += DEPTH) {
#pragma unroll
      for (int d = 0; d < DEPTH; ++d) {
        if (t + d < n_batches) {
#pragma unroll
          for (int u = 0; u < U; ++u) {
            const int64_t idx = base + u * 32 + lane;
            if (idx < nvec) {
              float4 xr[EPV / 4];
#pragma unroll
              for (int q = 0; q < EPV / 4; ++q) xr[q] = lds_f4(xin + idx * EPV + 4 * q);
#pragma unroll
              for (int r = 0; r < RPW; ++r) acc[r] += dot16r(v[d][r][u], xr, static_cast<Wt*>(nullptr));
            }
          }
          if (t + d + DEPTH < n_batches) {
            load_next(v[d]);
            if (lab_trigger(p.lab, kGemvTrigLoads, false) && t + d + DEPTH == n_batches - 1) pdl_launch_dependents();
          }
          base += 32 * U;
          if (base >= nvec) {  // the row group is complete
            const int nrows = rows_of(grp);
#pragma unroll
            for (int r = 0; r < RPW; ++r) {
              const float sum = warp_sum(acc[r]);
              acc[r] = 0.f;
              if constexpr (ARG) {
                // Lane 1 stores the logit and lane 0 keeps the argmax, so lane 0 of warp 0 has no stores
                // pending when it fences its block's result in argmax_finish.
                const int64_t row = grp * RPW + r;
                const float val = scale * sum + (p.bias ? p.bias[row] : 0.f);
                if (lane == 1 && r < nrows) p.out[row] = val;
                if (lane == 0 && r < nrows && row < n_arg) argmax_merge(best_v, best_i, val, row);
              } else if (lane == 0 && r < nrows) {
                const int64_t row = grp * RPW + r;
                p.out[row] = (p.accumulate ? p.out[row] : 0.f) + scale * sum + (p.bias ? p.bias[row] : 0.f);
              }
            }
            base = 0;
            grp += stride;
          }
        }
      }
    }
    if constexpr (ARG) argmax_finish(p, best_v, best_i);
  } else if constexpr (!ARG) {
    prefetch_l2_share(p.prefetch_next, p.prefetch_next_bytes);
    if (lab_trigger(p.lab, kGemvTrigStart, p.trigger_at_start)) pdl_launch_dependents();
    pdl_wait();
    if (lab_trigger(p.lab, kGemvTrigWaited, !p.trigger_at_start)) pdl_launch_dependents();
    lab_trace_waited(p.lab);
    const float scale = prologue<0, 1>(p, groups, xin, xraw, scratch);
    lab_trace_mark(p.lab, 4);
    for (int64_t grp = grp0; grp < n_groups; grp += stride) {
      const int nrows = rows_of(grp);
      float acc[RPW];
#pragma unroll
      for (int r = 0; r < RPW; ++r) acc[r] = 0.f;
      for (int64_t k = lane; k < K; k += 32) {
        const float xk = xin[k];
#pragma unroll
        for (int r = 0; r < RPW; ++r)
          if (r < nrows) acc[r] += to_f32(W[(grp * RPW + r) * K + k]) * xk;
      }
#pragma unroll
      for (int r = 0; r < RPW; ++r) {
        const float sum = warp_sum(acc[r]);
        if (lane == 0 && r < nrows) {
          const int64_t row = grp * RPW + r;
          p.out[row] = (p.accumulate ? p.out[row] : 0.f) + scale * sum + (p.bias ? p.bias[row] : 0.f);
        }
      }
    }
  }
  lab_trace_end(p.lab);
}

template <typename Wt, int RPW, int PRO, bool VEC, int DEPTH, int BATCH>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(GemvParams p) {
  gemv_body<Wt, RPW, PRO, VEC, DEPTH, BATCH, false>(p);
}

// The LM head of a greedy decode chain: the plain streaming kernel with the argmax after it.
template <typename Wt, int RPW>
__global__ void __launch_bounds__(kWarps * 32) gemv_argmax_kernel(GemvParams p) {
  gemv_body<Wt, RPW, kPlain, true, 2, 4, true>(p);
}

// Small matrices (a decode step of a small model is latency-bound, not bandwidth-bound): each block
// copies its contiguous slice of rows into shared memory with cp.async before the PDL wait, so after
// the wait only the prologue's one round trip for x (and the residual rows) is left on the critical path.
// Light on registers, so the blocks of the next kernels fit on the SMs beside it and start early too.
constexpr int64_t kSmemSliceBytes = 64 * 1024;  // per block; larger matrices use the streaming kernel

// Each lane keeps its columns of xin in registers (NV 16-byte column vectors, nvec <= 32 NV) and a warp
// reduces four rows at a time, so the shared-memory traffic after the wait is the weights, read once.
// Shared memory: W slice (rows_per_block, K) | xin (K, padded to 4) | scratch (kScratch) | res (rows).
inline int64_t smem_gemv_bytes(int64_t rows, int64_t row_bytes, int64_t K) {
  return rows * row_bytes + int64_t(sizeof(float)) * (((K + 3) & ~int64_t(3)) + kScratch + rows);
}
constexpr int kSmemThreads = 256;

template <typename Wt, int PRO, int NV>
__global__ void __launch_bounds__(kSmemThreads) gemv_smem_kernel(GemvParams p, int rows_per_block) {
  constexpr int EPV = 16 / int(sizeof(Wt)), Q = EPV / 4, kRowsAtOnce = 4, kWarpsPerBlock = kSmemThreads / 32;
  extern __shared__ __align__(16) unsigned char smem[];
  const int64_t K = p.K, nvec = K / EPV, row_bytes = K * int64_t(sizeof(Wt));
  const int64_t r0 = int64_t(blockIdx.x) * rows_per_block;
  const int nr = int(imin(rows_per_block, p.R - r0));
  uint4* w = reinterpret_cast<uint4*>(smem);                                          // (rows_per_block, K) weights
  float* xin = reinterpret_cast<float*>(smem + int64_t(rows_per_block) * row_bytes);  // (K) normalised input
  float* scratch = xin + ((K + 3) & ~int64_t(3));                                     // kScratch floats
  float* res = scratch + kScratch;                                                    // (rows_per_block) results
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  const int64_t groups = PRO == kGrouped ? p.groups : 1;
  lab_trace_start(p.lab);
  stage_norm_w(p, groups, xin, scratch);  // its cp.async group first: the prologue waits for it alone
  {
    const uint4* src = reinterpret_cast<const uint4*>(static_cast<const char*>(p.W) + r0 * row_bytes);
    const int64_t n16 = int64_t(nr) * row_bytes / 16;
    for (int64_t i = threadIdx.x; i < n16; i += kSmemThreads) cp_async16(w + i, src + i);
    cp_async_commit();
  }
  prefetch_l2_share(p.prefetch_next, p.prefetch_next_bytes);
  if (lab_trigger(p.lab, kGemvTrigStart, p.trigger_at_start)) pdl_launch_dependents();
  pdl_wait();
  if (lab_trigger(p.lab, kGemvTrigWaited, !p.trigger_at_start)) pdl_launch_dependents();
  lab_trace_waited(p.lab);
  // The residual rows this block accumulates into: loaded now, in the prologue's round trip.
  float base = 0.f;
  if (threadIdx.x < nr) base = (p.accumulate ? p.out[r0 + threadIdx.x] : 0.f) + (p.bias ? p.bias[r0 + threadIdx.x] : 0.f);
  const float scale = prologue<1, 2>(p, groups, xin, nullptr, scratch);
  float4 xr[NV][Q];
  load_lane_vectors(xr, xin, nvec, lane);
  lab_trace_mark(p.lab, 4);
  cp_async_wait_all();
  __syncthreads();
  if (lab_trigger(p.lab, kGemvTrigLoads, false)) pdl_launch_dependents();
  lab_trace_mark(p.lab, 5);

  for (int rb = warp; rb < nr; rb += kWarpsPerBlock * kRowsAtOnce) {
    float acc[kRowsAtOnce];
#pragma unroll
    for (int j = 0; j < kRowsAtOnce; ++j) {
      const int r = rb + j * kWarpsPerBlock;
      acc[j] = 0.f;
      if (r < nr) {
#pragma unroll
        for (int v = 0; v < NV; ++v) {
          const int64_t i = lane + 32 * v;
          if (i < nvec) acc[j] += dot16r(lds_u4(w + int64_t(r) * nvec + i), xr[v], static_cast<Wt*>(nullptr));
        }
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
#pragma unroll
      for (int j = 0; j < kRowsAtOnce; ++j) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], o);
    if (lane == 0)
#pragma unroll
      for (int j = 0; j < kRowsAtOnce; ++j)
        if (rb + j * kWarpsPerBlock < nr) res[rb + j * kWarpsPerBlock] = acc[j];
  }
  __syncthreads();
  if (threadIdx.x < nr) p.out[r0 + threadIdx.x] = base + scale * res[threadIdx.x];
  lab_trace_end(p.lab);
}

int prologue_kind(const GemvParams& p) { return p.prologue == GemvPrologue::GroupRmsNorm ? kGrouped : kPlain; }

int sm_count() {
  static int n = [] {
    int dev = 0, v = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
    return v;
  }();
  return n;
}

// ARG: the argmax kernel (PRO plain, VEC, depth 2 x 4).
template <typename Wt, int RPW, int PRO, bool VEC, int DEPTH, int BATCH, bool ARG = false>
void launch_one(const GemvParams& p, cudaStream_t s, bool pdl) {
  void (*kernel)(GemvParams);
  if constexpr (ARG) kernel = gemv_argmax_kernel<Wt, RPW>;
  else kernel = gemv_kernel<Wt, RPW, PRO, VEC, DEPTH, BATCH>;
  const size_t smem = sizeof(float) * size_t(2 * ((p.K + 3) & ~int64_t(3)) + kScratch);  // xin, xraw, scratch
  if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  // One wave at most: every block resident at once, so a PDL successor is never starved of slots
  // by a tail wave and the grid-stride loop balances the rows.
  int per_sm = 0;
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kWarps * 32, smem));
  const int64_t needed = ceil_div(p.R, int64_t(kWarps) * RPW);
  int64_t grid = std::max<int64_t>(1, std::min<int64_t>(needed, int64_t(std::max(per_sm, 1)) * sm_count()));
  if (ARG) grid = std::min<int64_t>(grid, kMaxArgmaxBlocks);  // one workspace slot per block
  launch_kernel(kernel, dim3(static_cast<unsigned>(grid)), dim3(kWarps * 32), smem, s, pdl, ARG ? "gemv_argmax_kernel" : "gemv_kernel", p);
}

template <typename Wt, int PRO, bool VEC, int DEPTH, int BATCH, bool ARG = false>
void launch_rpw(const GemvParams& p, cudaStream_t s, bool pdl) {
  // Several rows per warp share the prologue's cost, but only while the grid still covers every SM twice.
  const int64_t target = 2 * int64_t(sm_count());
  if (int64_t(ceil_div(p.R, kWarps * 4)) >= target) launch_one<Wt, 4, PRO, VEC, DEPTH, BATCH, ARG>(p, s, pdl);
  else if (int64_t(ceil_div(p.R, kWarps * 2)) >= target) launch_one<Wt, 2, PRO, VEC, DEPTH, BATCH, ARG>(p, s, pdl);
  else launch_one<Wt, 1, PRO, VEC, DEPTH, BATCH, ARG>(p, s, pdl);
}

// The shared-memory kernel when every block's slice fits (rows <= threads: one result per thread).
template <typename Wt>
bool try_launch_smem(const GemvParams& p, cudaStream_t s, bool pdl) {
  const int64_t row_bytes = p.K * int64_t(sizeof(Wt));
  if (row_bytes % 16 != 0 || (reinterpret_cast<uintptr_t>(p.W) & 15) != 0) return false;
  const int64_t rows = std::max<int64_t>(1, (p.R + sm_count() - 1) / sm_count());
  if (rows > kSmemThreads || rows * row_bytes > kSmemSliceBytes) return false;
  const size_t smem = size_t(smem_gemv_bytes(rows, row_bytes, p.K));
  constexpr int EPV = 16 / int(sizeof(Wt));
  const int64_t per_lane = (p.K / EPV + 31) / 32;
  if (per_lane > 8) return false;
  const int pro = prologue_kind(p);
  auto pick = [&](auto nv) {
    constexpr int NV = decltype(nv)::value;
    return pro == kGrouped ? gemv_smem_kernel<Wt, kGrouped, NV> : gemv_smem_kernel<Wt, kPlain, NV>;
  };
  auto kernel = per_lane <= 2   ? pick(std::integral_constant<int, 2>{})
                : per_lane <= 4 ? pick(std::integral_constant<int, 4>{})
                                : pick(std::integral_constant<int, 8>{});
  if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  launch_kernel(kernel, dim3(ceil_div(p.R, rows)), dim3(kSmemThreads), smem, s, pdl, "gemv_smem_kernel", p, static_cast<int>(rows));
  return true;
}

template <typename Wt>
void launch_typed(const GemvParams& p, cudaStream_t s, bool pdl) {
  constexpr int EPV = 16 / int(sizeof(Wt));
  const bool vec = p.K % EPV == 0 && (reinterpret_cast<uintptr_t>(p.W) & 15) == 0;
  if (p.argmax_ws) {
    if (!vec || p.prologue != GemvPrologue::RmsNorm || !p.argmax.cfg || !p.argmax.out || p.accumulate)
      throw Error("gemv: the argmax needs 16-byte rows, the plain prologue and an argmax target");
    return launch_rpw<Wt, kPlain, true, 2, 4, true>(p, s, pdl);
  }
  if (!p.force_streaming && try_launch_smem<Wt>(p, s, pdl)) return;
  auto with_pro = [&](auto pro) {
    constexpr int PRO = decltype(pro)::value;
    if (!vec) return launch_rpw<Wt, PRO, false, 1, 8>(p, s, pdl);
#if MAMBA_CUDA_LAB
    if (p.lab.variant == 1) return launch_rpw<Wt, PRO, true, 1, 8>(p, s, pdl);
#endif
    return launch_rpw<Wt, PRO, true, 2, 4>(p, s, pdl);
  };
  if (prologue_kind(p) == kGrouped) with_pro(std::integral_constant<int, kGrouped>{});
  else with_pro(std::integral_constant<int, kPlain>{});
}
}  // namespace

void launch_gemv(const GemvParams& p, cudaStream_t s, bool pdl) {
  if (p.R <= 0) return;
  MAMBA_DTYPE_SWITCH(p.wdtype, Wt, launch_typed<Wt>(p, s, pdl));
}

}  // namespace mamba
