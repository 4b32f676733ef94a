#include <climits>

#include "engine/error.h"
#include "kernels/lab.cuh"
#include "kernels/launch.cuh"
#include "kernels/sampling.cuh"

namespace mamba {

namespace {
constexpr int kThreads = 1024;

__device__ __forceinline__ float scaled_prob(float l, float m, float temperature) { return expf((l - m) / temperature); }

// Exclusive prefix sum over the block (kThreads threads); `scratch` holds 32 floats.
__device__ float block_exclusive_scan(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float incl = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const float n = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += n;
  }
  __syncthreads();
  if (lane == 31) scratch[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    float w = scratch[lane];
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const float n = __shfl_up_sync(0xffffffffu, w, o);
      if (lane >= o) w += n;
    }
    scratch[lane] = w;  // inclusive over warps
  }
  __syncthreads();
  return (warp ? scratch[warp - 1] : 0.f) + incl - v;
}

// ---- The report's top list: bitonic networks over a warp's 32 (value, id) pairs, one per lane. ----
// (av, ai) comes before (bv, bi): the larger value, the lower id on ties (a total order on distinct ids).
__device__ __forceinline__ bool before(float av, int ai, float bv, int bi) { return av > bv || (av == bv && ai < bi); }

// One compare-exchange of the lanes (lane, lane ^ j): this lane keeps the first of the two, or the second.
__device__ __forceinline__ void cmpx(float& v, int& i, int j, bool keep_first) {
  const float ov = __shfl_xor_sync(0xffffffffu, v, j);
  const int oi = __shfl_xor_sync(0xffffffffu, i, j);
  if (before(ov, oi, v, i) == keep_first) {
    v = ov;
    i = oi;
  }
}

// Sorts the warp's pairs: lane k ends with the k-th.
__device__ __forceinline__ void warp_sort(float& v, int& i) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int k = 2; k <= 32; k <<= 1)
#pragma unroll
    for (int j = k >> 1; j > 0; j >>= 1) cmpx(v, i, j, ((lane & j) == 0) == ((lane & k) == 0));
}

// a and b sorted (lanes 0..15 their first 16): lanes 0..15 of a end with the first 16 of both, sorted. The
// first 16 of a followed by those of b reversed form a bitonic sequence, which five steps sort.
__device__ __forceinline__ void merge_top(float& av, int& ai, float bv, int bi) {
  const int lane = threadIdx.x & 31;
  const float rv = __shfl_sync(0xffffffffu, bv, 31 - lane);
  const int ri = __shfl_sync(0xffffffffu, bi, 31 - lane);
  if (lane >= 16) {
    av = rv;
    ai = ri;
  }
#pragma unroll
  for (int j = 16; j > 0; j >>= 1) cmpx(av, ai, j, (lane & j) == 0);
}

constexpr float kNone = -INFINITY;  // an empty list entry, with id INT_MAX: after every real one
static_assert(kReportTop == 16, "merge_top keeps 16");

// Shared lists of kReportTop pairs, one per warp, merged in a tree (five rounds for 32 lists) into list 0.
struct TopLists {
  float v[32][kReportTop];
  int i[32][kReportTop];
};
__device__ void merge_lists(TopLists& t) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int s = 1; s <= 5; ++s) {
    __syncthreads();
    if (warp < (32 >> s)) {
      const int a = warp << s, b = a + (1 << (s - 1));
      float av = lane < 16 ? t.v[a][lane] : kNone, bv = lane < 16 ? t.v[b][lane] : kNone;
      int ai = lane < 16 ? t.i[a][lane] : INT_MAX, bi = lane < 16 ? t.i[b][lane] : INT_MAX;
      merge_top(av, ai, bv, bi);
      if (lane < 16) {
        t.v[a][lane] = av;
        t.i[a][lane] = ai;
      }
    }
  }
  __syncthreads();
}

// Every block: its kReportTop best of [lo, hi) and its normaliser relative to its maximum m_b (held by thread 0)
// into the workspace, each writer fencing its stores before the grid's arrival count (grid_argmax_last).
__device__ void block_report(const SampleParams& p, int64_t lo, int64_t hi, float m_b, float* scratch) {
  __shared__ TopLists t;
  __shared__ float s_m;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float tv = kNone;
  int ti = INT_MAX;
  for (int64_t i0 = lo + 32 * warp; i0 < hi; i0 += kThreads) {  // the argmax loop's elements, 32 at a time
    const int64_t i = i0 + lane;
    float v = i < hi ? p.logits[i] : kNone;
    int id = i < hi ? int(i) : INT_MAX;
    warp_sort(v, id);
    merge_top(tv, ti, v, id);
  }
  if (lane < 16) {
    t.v[warp][lane] = tv;
    t.i[warp][lane] = ti;
  }
  if (threadIdx.x == 0) s_m = m_b;  // thread 0 holds the block's maximum
  merge_lists(t);
  const float m = s_m;
  float z = 0.f;
  if (m > -INFINITY)
    for (int64_t i = lo + threadIdx.x; i < hi; i += kThreads) z += expf(p.logits[i] - m);
  z = block_sum(z, scratch);
  SampleWorkspace* ws = p.ws;
  if (threadIdx.x < kReportTop) {
    ws->top_v[blockIdx.x][threadIdx.x] = t.v[0][threadIdx.x];
    ws->top_i[blockIdx.x][threadIdx.x] = t.i[0][threadIdx.x];
  }
  if (threadIdx.x == 0) ws->z[blockIdx.x] = z;
  __threadfence();
  __syncthreads();
}

// The last block: the grid's kReportTop best and normaliser from the blocks' (m = the grid's maximum). Writes
// the list to the report and returns the normaliser to every thread.
__device__ float grid_report(const SampleParams& p, float m, float* scratch) {
  __shared__ TopLists t;
  const SampleWorkspace* ws = p.ws;
  const int nb = int(gridDim.x);
  for (int k = threadIdx.x; k < 32 * kReportTop; k += kThreads) {
    const int b = k / kReportTop, j = k % kReportTop;
    t.v[b][j] = b < nb ? __ldcg(&ws->top_v[b][j]) : kNone;
    t.i[b][j] = b < nb ? __ldcg(&ws->top_i[b][j]) : INT_MAX;
  }
  merge_lists(t);
  float z = 0.f;
  if (threadIdx.x < nb) {
    const float mb = __ldcg(&ws->v[threadIdx.x]);
    if (mb > -INFINITY) z = __ldcg(&ws->z[threadIdx.x]) * expf(mb - m);
  }
  z = block_sum(z, scratch);
  if (threadIdx.x < kReportTop) {
    const float v = t.v[0][threadIdx.x];
    p.report->top_i[threadIdx.x] = t.i[0][threadIdx.x];
    p.report->top_p[threadIdx.x] = v > -INFINITY ? expf(v - m) / z : 0.f;
  }
  return z;
}

// REPORT: the instance that also writes SampleParams::report.
template <bool REPORT>
__global__ void __launch_bounds__(kThreads) sample_kernel(SampleParams p) {
  __shared__ float scratch[32];
  __shared__ float best_v[32];
  __shared__ int64_t best_i[32];
  __shared__ int64_t s_chosen;
  lab_trace_start(p.lab);
  if (lab_trigger(p.lab, 1, false)) pdl_launch_dependents();
  // A halted step of a chain: every block sees the same *live, written at least two kernels back (the
  // LM head lets this kernel launch only once past its own wait), so all leave.
  if (p.chain.live && p.chain.step >= __ldcg(p.chain.live)) return;
  pdl_wait();
  if (lab_trigger(p.lab, 0, !p.hold_next)) pdl_launch_dependents();
  lab_trace_waited(p.lab);
  const SampleConfig cfg = *p.cfg;
  const int64_t n = cfg.n;

  // 1. argmax: this block's slice, then the last block to arrive merges the blocks' results (fixed order:
  //    the merge keeps the lowest id on ties whatever the order).
  const int64_t slice = (n + gridDim.x - 1) / gridDim.x, lo = imin(n, blockIdx.x * slice), hi = imin(n, lo + slice);
  float bv = -INFINITY;
  int64_t bi = n;
  for (int64_t i = lo + threadIdx.x; i < hi; i += kThreads) argmax_merge(bv, bi, p.logits[i], i);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) argmax_merge(bv, bi, __shfl_xor_sync(0xffffffffu, bv, o), __shfl_xor_sync(0xffffffffu, bi, o));
  block_argmax(bv, bi, best_v, best_i);
  __shared__ bool s_last;
  if constexpr (REPORT) block_report(p, lo, hi, bv, scratch);
  if (gridDim.x > 1 && !grid_argmax_last(bv, bi, p.ws->v, p.ws->i, &p.ws->arrived, best_v, best_i, &s_last)) {
    lab_trace_end(p.lab);
    return;
  }
  if (threadIdx.x == 0) {  // only thread 0 reads best_v / best_i in the merges
    best_v[0] = bv;
    best_i[0] = bi;
    s_chosen = bi;
  }
  __syncthreads();
  const float m = best_v[0];
  [[maybe_unused]] float z_all = 0.f;
  if constexpr (REPORT) z_all = grid_report(p, m, scratch);
  // The chosen id's probability, by thread 0 once the id is known.
  auto emit = [&](int64_t id) {
    sample_emit(p, id);
    if constexpr (REPORT) p.report->prob = m > -INFINITY ? expf(p.logits[id] - m) / z_all : 0.f;
  };
  if (cfg.temperature == 0.f || !(m > -INFINITY)) {
    if (threadIdx.x == 0) emit(best_i[0]);
    lab_trace_end(p.lab);
    return;
  }
  const float temp = cfg.temperature;
  const float u = p.chain.u ? *p.chain.u : cfg.u;

  // 2. threshold tau on q (unnormalised probabilities, the largest is exactly 1): the largest value
  //    whose "at least tau" set reaches top_k members or top_p of the mass, by bisection over q's bits
  //    (positive floats order as their bit patterns). Each step is one pass + one block reduction.
  float tau = 0.f;
  const bool use_k = cfg.top_k > 0 && cfg.top_k < n, use_p = cfg.top_p < 1.f;
  if (use_k || use_p) {
    float z = 0.f;
    for (int64_t i = threadIdx.x; i < n; i += kThreads) z += scaled_prob(p.logits[i], m, temp);
    z = block_sum(z, scratch);
    const float k_eff = use_k ? float(cfg.top_k) : INFINITY;
    const float mass_eff = use_p ? cfg.top_p * z : INFINITY;
    unsigned lo = 0, hi = __float_as_uint(1.f);  // the criterion holds at lo (everything is kept)
    while (lo < hi) {
      const unsigned mid = lo + (hi - lo + 1) / 2;
      const float thr = __uint_as_float(mid);
      float cnt = 0.f, mass = 0.f;
      for (int64_t i = threadIdx.x; i < n; i += kThreads) {
        const float q = scaled_prob(p.logits[i], m, temp);
        if (q >= thr) {
          cnt += 1.f;
          mass += q;
        }
      }
      cnt = block_sum(cnt, scratch);
      mass = block_sum(mass, scratch);
      if (cnt >= k_eff || mass >= mass_eff) lo = mid;
      else hi = mid - 1;
    }
    tau = __uint_as_float(lo);
  }
  tau = fmaxf(tau, cfg.min_p);  // min-p: q >= min_p * q_max, and q_max = 1

  // 3. draw: each thread owns a contiguous run of ids so the walk follows index order
  const int64_t per = (n + kThreads - 1) / kThreads;
  const int64_t i0 = imin(n, threadIdx.x * per), i1 = imin(n, i0 + per);
  float local = 0.f;
  for (int64_t i = i0; i < i1; ++i) {
    const float q = scaled_prob(p.logits[i], m, temp);
    if (q >= tau) local += q;
  }
  const float before = block_exclusive_scan(local, scratch);
  __shared__ float s_total;
  if (threadIdx.x == kThreads - 1) s_total = before + local;
  __syncthreads();
  const float r = u * s_total;
  if (r >= before && r < before + local) {
    float cum = before;
    for (int64_t i = i0; i < i1; ++i) {
      const float q = scaled_prob(p.logits[i], m, temp);
      if (q < tau) continue;
      cum += q;
      if (r < cum) {
        s_chosen = i;
        break;
      }
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) emit(s_chosen);
  lab_trace_end(p.lab);
}
}  // namespace

void launch_sample(const SampleParams& p, cudaStream_t s, bool pdl) {
  static_assert(kSampleBlocks <= 32, "the last block merges the blocks' results in one warp");
  if (p.report) {
    if (!p.ws) throw Error("sample: a report needs the workspace");
    launch_kernel(sample_kernel<true>, dim3(kSampleBlocks), dim3(kThreads), 0, s, pdl, "sample_kernel (report)", p);
  } else {
    launch_kernel(sample_kernel<false>, dim3(p.ws ? kSampleBlocks : 1), dim3(kThreads), 0, s, pdl, "sample_kernel", p);
  }
}

}  // namespace mamba
