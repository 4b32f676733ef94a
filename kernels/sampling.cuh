#pragma once
// Sampling on the GPU so only the chosen id crosses the bus: temperature, top-k, top-p, min-p over
// the first n logits, with one uniform draw from the host's RNG (the Session keeps the RNG state).
// Temperature 0 is argmax (lowest id on ties, as std::max_element). The kept set is {q >= tau} with
// q = exp((l - max) / temperature): tau is found by bisection over q's bits as the largest value whose
// "q >= tau" set holds top_k ids or top_p of the mass; ties at tau are all kept, the only difference
// from the CPU sampler's sorted cut. Within the kept set the draw walks ids in index
// order (a different but equally valid inverse-CDF order than the CPU's descending one).
// A report (SampleParams::report) also gives what the host sampler's SampleInfo gives: the chosen id's model
// probability and the kReportTop most probable ids with theirs (softmax of the raw logits over the first n).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/lab.cuh"

namespace mamba {

// Read from device memory so a captured decode graph can take new settings each step.
struct SampleConfig {
  int64_t n = 0;  // candidates: ids < n
  float temperature = 0.f;
  int32_t top_k = 0;  // 0 = off
  float top_p = 1.f;  // 1 = off
  float min_p = 0.f;  // 0 = off
  float u = 0.f;      // uniform in [0, 1)
};

// The argmax runs over kSampleBlocks blocks; the last one to finish merges their results and, unless the
// temperature is 0, goes on to sample alone. `ws` holds their results and an arrival counter (zero between
// calls: the last block resets it); with a report also each block's softmax normaliser relative to its own
// maximum and its kReportTop best (value, id).
constexpr int kSampleBlocks = 32;
constexpr int kReportTop = 16;
struct SampleWorkspace {
  float v[kSampleBlocks];
  int64_t i[kSampleBlocks];
  unsigned arrived;
  float z[kSampleBlocks];
  float top_v[kSampleBlocks][kReportTop];
  int32_t top_i[kSampleBlocks][kReportTop];
};

// What is reported with a sampled id (the id itself goes to SampleParams::out).
struct SampleReport {
  float prob = 0.f;                // the id's probability under softmax(logits[0, n))
  int32_t top_i[kReportTop] = {};  // the most probable ids, best first (lower id first on ties)
  float top_p[kReportTop] = {};    // their probabilities
};

// A chain of decode steps in one graph (CudaBackend::step_sample_chain), all pointers on the device: the
// sampler of step `step` runs only while step < *live, draws with u instead of cfg->u, also writes its id to
// *next (the next step's token), and when the id is one of stop[0 .. *n_stop) sets *live = step + 1, so the
// steps after it do nothing.
struct SampleChain {
  int32_t* live = nullptr;  // null: a single step
  int step = 0;
  const float* u = nullptr;
  int32_t* next = nullptr;
  const int32_t* stop = nullptr;
  const int32_t* n_stop = nullptr;
};

struct SampleParams {
  const float* logits = nullptr;      // (>= cfg->n) on the device
  const SampleConfig* cfg = nullptr;  // on the device
  int32_t* out = nullptr;             // (1) on the device
  SampleWorkspace* ws = nullptr;      // on the device, zeroed once
  SampleReport* report = nullptr;     // on the device, or null: the instance that also writes a report (needs ws)
  SampleChain chain;
  // The next kernel (PDL) launches only once this one is done (a chain's next step then finds the SMs free);
  // else once this one is past its wait.
  bool hold_next = false;
  LabHooks lab;  // lab build: trace; trigger points 0 past the wait, 1 before it, 2 at the end
};

// pdl: may start while the kernel before it (the LM head) finishes.
void launch_sample(const SampleParams& p, cudaStream_t s, bool pdl = false);

#ifdef __CUDACC__
// (v, i) = the larger of (v, i) and (ov, oi); the lower id on ties, as std::max_element.
__device__ __forceinline__ void argmax_merge(float& v, int64_t& i, float ov, int64_t oi) {
  if (ov > v || (ov == v && oi < i)) {
    v = ov;
    i = oi;
  }
}

// Thread 0 ends with the block's argmax of the (v, i) that lane 0 of each warp holds; `wv`, `wi`: shared
// memory, one entry per warp. Every thread of the block calls it.
__device__ __forceinline__ void block_argmax(float& v, int64_t& i, float* wv, int64_t* wi) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = int(blockDim.x + 31) / 32;
  if (lane == 0) {
    wv[warp] = v;
    wi[warp] = i;
  }
  __syncthreads();
  if (threadIdx.x == 0)
    for (int w = 1; w < warps; ++w) argmax_merge(v, i, wv[w], wi[w]);
}

// The grid's argmax from one (v, i) per block (held by thread 0), merged by the last block to arrive: each
// block writes its result to slot blockIdx.x of (ws_v, ws_i), fences, and counts itself on *arrived (zero
// between calls; the last block resets it). Every thread of the block calls it; it returns true only in the
// last block, whose thread 0 then holds the grid's argmax (the lowest id on ties, whatever the arrival
// order). `wv`, `wi`: as block_argmax; `last`: one shared bool.
template <typename I>
__device__ bool grid_argmax_last(float& v, int64_t& i, float* ws_v, I* ws_i, unsigned* arrived, float* wv, int64_t* wi, bool* last) {
  if (threadIdx.x == 0) {
    ws_v[blockIdx.x] = v;
    ws_i[blockIdx.x] = static_cast<I>(i);
    __threadfence();
    *last = atomicAdd(arrived, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!*last) return false;
  __threadfence();
  float mv = -INFINITY;
  int64_t mi = INT64_MAX;
  for (unsigned b = threadIdx.x; b < gridDim.x; b += blockDim.x)
    argmax_merge(mv, mi, __ldcg(&ws_v[b]), static_cast<int64_t>(__ldcg(&ws_i[b])));
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) argmax_merge(mv, mi, __shfl_xor_sync(0xffffffffu, mv, o), __shfl_xor_sync(0xffffffffu, mi, o));
  block_argmax(mv, mi, wv, wi);  // thread 0 read wv / wi (the caller's block_argmax) before the barrier above
  if (threadIdx.x == 0) {
    *arrived = 0;
    v = mv;
    i = mi;
  }
  return true;
}

// One thread: the chosen id to its places (*out; with a chain also the next step's token and the stop).
__device__ __forceinline__ void sample_emit(const SampleParams& p, int64_t id) {
  const int32_t v = static_cast<int32_t>(id);
  *p.out = v;
  const SampleChain& c = p.chain;
  if (!c.live) return;
  if (c.next) *c.next = v;
  const int ns = *c.n_stop;
  for (int k = 0; k < ns; ++k)
    if (c.stop[k] == v) {
      *c.live = c.step + 1;
      break;
    }
}
#endif

}  // namespace mamba
