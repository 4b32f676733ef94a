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

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleParams p) {
  __shared__ float scratch[32];
  __shared__ float best_v[32];
  __shared__ int64_t best_i[32];
  __shared__ int64_t s_chosen;
  trace_start(p.trace);
  if (p.trigger == 1) pdl_launch_dependents();
  // A halted step of a chain: every block sees the same *live, written at least two kernels back (the
  // LM head lets this kernel launch only once past its own wait), so all leave.
  if (p.chain.live && p.chain.step >= __ldcg(p.chain.live)) return;
  pdl_wait();
  if (p.trigger == 0) pdl_launch_dependents();
  trace_waited(p.trace);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
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
  if (gridDim.x > 1 && !grid_argmax_last(bv, bi, p.ws->v, p.ws->i, &p.ws->arrived, best_v, best_i, &s_last)) {
    trace_end(p.trace);
    return;
  }
  if (threadIdx.x == 0) {  // only thread 0 reads best_v / best_i in the merges
    best_v[0] = bv;
    best_i[0] = bi;
    s_chosen = bi;
  }
  __syncthreads();
  const float m = best_v[0];
  if (cfg.temperature == 0.f || !(m > -INFINITY)) {
    if (threadIdx.x == 0) sample_emit(p, best_i[0]);
    trace_end(p.trace);
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
  if (threadIdx.x == 0) sample_emit(p, s_chosen);
  trace_end(p.trace);
}
}  // namespace

void launch_sample(const SampleParams& p, cudaStream_t s, bool pdl) {
  static_assert(kSampleBlocks <= 32, "the last block merges the blocks' results in one warp");
  launch_kernel(sample_kernel, dim3(p.ws ? kSampleBlocks : 1), dim3(kThreads), 0, s, pdl, "sample_kernel", p);
}

}  // namespace mamba
