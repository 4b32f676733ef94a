// sync_bench: what one dependency step costs on this GPU, measured alone, before building decode on it.
//   nvcc -O3 -arch=sm_90 -std=c++17 -o sync_bench kernels/tools/sync_bench.cu && ./sync_bench
// Each "step" is the decode pattern: every block writes its slice of a vector of D floats, every block
// then needs the whole vector (read from L2, block sum, tiny compute). Measured as
//  (a) a CUDA graph of N dependent kernels (with and without programmatic dependent launch), and
//  (b) one persistent kernel with N grid-wide barriers of several kinds.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#define CK(x)                                                                                        \
  do {                                                                                               \
    cudaError_t e_ = (x);                                                                            \
    if (e_ != cudaSuccess) {                                                                         \
      std::fprintf(stderr, "%s failed: %s (%s:%d)\n", #x, cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(1);                                                                                  \
    }                                                                                                \
  } while (0)

namespace cg = cooperative_groups;

constexpr int kD = 768;

__device__ __forceinline__ float block_sum(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nw ? scratch[lane] : 0.f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float ld_cg(const float* p) {
  float v;
  asm volatile("ld.global.cg.f32 %0, [%1];" : "=f"(v) : "l"(p) : "memory");
  return v;
}

// The work of one step: read all of `in` (written by other blocks), reduce, write this block's slice.
__device__ __forceinline__ void step_work(const float* in, float* out, float* scratch, bool do_work) {
  if (!do_work) return;
  float ss = 0.f;
  for (int k = threadIdx.x; k < kD; k += blockDim.x) {
    const float v = ld_cg(in + k);
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const int per = (kD + gridDim.x - 1) / gridDim.x;
  for (int k = threadIdx.x; k < per; k += blockDim.x) {
    const int i = blockIdx.x * per + k;
    if (i < kD) out[i] = 0.5f * ld_cg(in + i) + 1e-3f * rsqrtf(ss + 1.f);
  }
}

// ---- (a) kernel chain -----------------------------------------------------------------------------
__global__ void chain_kernel(const float* in, float* out, int do_work, int pdl) {
  __shared__ float scratch[32];
  if (pdl) {
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    asm volatile("griddepcontrol.wait;" ::: "memory");
  }
  step_work(in, out, scratch, do_work);
}

double time_chain(int blocks, int threads, int n, bool pdl, bool work, float* a, float* b, cudaStream_t s) {
  cudaGraph_t g;
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < n; ++i) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(blocks);
    cfg.blockDim = dim3(threads);
    cfg.stream = s;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    if (pdl) {
      cfg.attrs = attr;
      cfg.numAttrs = 1;
    }
    const float* in = (i & 1) ? b : a;
    float* out = (i & 1) ? a : b;
    CK(cudaLaunchKernelEx(&cfg, chain_kernel, in, out, int(work), int(pdl)));
  }
  CK(cudaStreamEndCapture(s, &g));
  cudaGraphExec_t ge;
  CK(cudaGraphInstantiate(&ge, g, 0));
  for (int i = 0; i < 3; ++i) CK(cudaGraphLaunch(ge, s));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  const int reps = 50;
  CK(cudaEventRecord(e0, s));
  for (int i = 0; i < reps; ++i) CK(cudaGraphLaunch(ge, s));
  CK(cudaEventRecord(e1, s));
  CK(cudaEventSynchronize(e1));
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  CK(cudaGraphExecDestroy(ge));
  CK(cudaGraphDestroy(g));
  return 1000.0 * ms / reps / n;  // us per kernel
}

// ---- (b) persistent kernel with barriers ------------------------------------------------------------
__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ unsigned ld_relaxed(const unsigned* p) {
  unsigned v;
  asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void st_release(unsigned* p, unsigned v) {
  asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ void red_release_add(unsigned* p, unsigned v) {
  asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ unsigned atom_acq_rel_add(unsigned* p, unsigned v) {
  unsigned old;
  asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], %2;" : "=r"(old) : "l"(p), "r"(v) : "memory");
  return old;
}

// sync[0..31]: counter line; sync[32..63]: flag line; sync[64..]: per-block flags (one per 32 B... packed)
enum Kind { kCoop = 0, kCounterFence, kCounterRed, kCounterRedRelaxedPoll, kLastArriver, kFlags, kNumKinds };
const char* kind_name[] = {"cg grid.sync()", "atomicAdd+threadfence, poll counter", "red.release, poll counter (acquire)",
                           "red.release, poll relaxed + fence", "last arriver sets flag line", "per-block flags, warp polls all"};

template <int KIND>
__device__ __forceinline__ void barrier(unsigned* sync, unsigned epoch) {
  if constexpr (KIND == kCoop) {
    cg::this_grid().sync();
  } else if constexpr (KIND == kFlags) {
    __syncthreads();
    unsigned* flags = sync + 64;
    if (threadIdx.x == 0) st_release(flags + blockIdx.x, epoch);
    if (threadIdx.x < 32) {
      bool done;
      do {
        done = true;
        for (int b = threadIdx.x; b < gridDim.x; b += 32) done &= ld_acquire(flags + b) >= epoch;
      } while (!__all_sync(0xffffffffu, done));
    }
    __syncthreads();
  } else {
    __syncthreads();
    if (threadIdx.x == 0) {
      const unsigned target = epoch * gridDim.x;
      if constexpr (KIND == kCounterFence) {
        __threadfence();
        atomicAdd(sync, 1u);
        while (ld_acquire(sync) < target) {
        }
      } else if constexpr (KIND == kCounterRed) {
        red_release_add(sync, 1u);
        while (ld_acquire(sync) < target) {
        }
      } else if constexpr (KIND == kCounterRedRelaxedPoll) {
        red_release_add(sync, 1u);
        while (ld_relaxed(sync) < target) {
        }
        __threadfence();
      } else if constexpr (KIND == kLastArriver) {
        const unsigned old = atom_acq_rel_add(sync, 1u);
        if (old == target - 1) st_release(sync + 32, epoch);
        else
          while (ld_acquire(sync + 32) < epoch) {
          }
      }
    }
    __syncthreads();
  }
}

template <int KIND>
__global__ void persistent_kernel(float* a, float* b, unsigned* sync, int n, int work) {
  __shared__ float scratch[32];
  for (int i = 0; i < n; ++i) {
    const float* in = (i & 1) ? b : a;
    float* out = (i & 1) ? a : b;
    step_work(in, out, scratch, work);
    barrier<KIND>(sync, unsigned(i + 1));
  }
}

template <int KIND>
double time_persistent(int blocks, int threads, int n, bool work, float* a, float* b, unsigned* sync, cudaStream_t s) {
  auto k = persistent_kernel<KIND>;
  int per_sm = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k, threads, 0));
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  if (blocks > per_sm * sms) return -1;
  int w = int(work);
  void* args[] = {&a, &b, &sync, &n, &w};
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  double best = 1e30;
  for (int rep = 0; rep < 4; ++rep) {
    CK(cudaMemsetAsync(sync, 0, 4096 * 4, s));
    CK(cudaEventRecord(e0, s));
    CK(cudaLaunchCooperativeKernel(reinterpret_cast<void*>(k), dim3(blocks), dim3(threads), args, 0, s));
    CK(cudaEventRecord(e1, s));
    CK(cudaEventSynchronize(e1));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    if (rep > 0) best = std::min(best, 1000.0 * ms / n);
  }
  return best;  // us per step
}

template <int KIND>
void row(int threads, float* a, float* b, unsigned* sync, cudaStream_t s, int sms) {
  std::printf("  %-42s", kind_name[KIND]);
  for (int blocks : {sms / 2, sms, 2 * sms})
    for (int work : {0, 1}) std::printf(" %7.2f", time_persistent<KIND>(blocks, threads, 2000, work, a, b, sync, s));
  std::printf("\n");
}

// ---- (c) does a resident successor waiting in griddepcontrol.wait slow the running kernel? ---------
__global__ void busy_kernel(float* out, int iters, int trigger) {
  __shared__ float buf[1024];
  if (trigger) asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  asm volatile("griddepcontrol.wait;" ::: "memory");
  for (int i = threadIdx.x; i < 1024; i += blockDim.x) buf[i] = float(i);
  __syncthreads();
  float acc = 0.f;
  for (int it = 0; it < iters; ++it) acc += buf[(threadIdx.x * 7 + it) & 1023] * 1.0001f;
  if (acc == 12345.f) out[0] = acc;  // keeps the loop
}
__global__ void waiter_kernel(float* out) {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  if (threadIdx.x == 0 && blockIdx.x == 0) out[1] = 1.f;
}

double time_busy(int iters, bool waiter, int waiter_blocks, int waiter_threads, float* out, cudaStream_t s) {
  cudaGraph_t g;
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < 20; ++i) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(132);
    cfg.blockDim = dim3(256);
    cfg.stream = s;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    CK(cudaLaunchKernelEx(&cfg, busy_kernel, out, iters, int(waiter)));
    if (waiter) {
      cfg.gridDim = dim3(waiter_blocks);
      cfg.blockDim = dim3(waiter_threads);
      CK(cudaLaunchKernelEx(&cfg, waiter_kernel, out));
    }
  }
  CK(cudaStreamEndCapture(s, &g));
  cudaGraphExec_t ge;
  CK(cudaGraphInstantiate(&ge, g, 0));
  CK(cudaGraphLaunch(ge, s));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  CK(cudaEventRecord(e0, s));
  for (int i = 0; i < 20; ++i) CK(cudaGraphLaunch(ge, s));
  CK(cudaEventRecord(e1, s));
  CK(cudaEventSynchronize(e1));
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  return 1000.0 * ms / 20 / 20;  // us per busy kernel (+ its waiter)
}

int main() {
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  std::printf("%s, %d SMs\n", prop.name, sms);
  float *a, *b;
  unsigned* sync;
  CK(cudaMalloc(&a, 4 * kD * sizeof(float)));
  CK(cudaMalloc(&b, 4 * kD * sizeof(float)));
  CK(cudaMalloc(&sync, 4096 * sizeof(unsigned)));
  std::vector<float> h(kD, 1.f);
  CK(cudaMemcpy(a, h.data(), kD * sizeof(float), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(b, h.data(), kD * sizeof(float), cudaMemcpyHostToDevice));
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

  std::printf("\n(a) graph of 72 dependent kernels, us per kernel\n");
  std::printf("  %-10s %-6s %9s %9s %9s %9s\n", "blocks", "thr", "noPDL", "noPDL+w", "PDL", "PDL+w");
  for (int blocks : {sms, 2 * sms, 4 * sms})
    for (int threads : {256, 512}) {
      std::printf("  %-10d %-6d", blocks, threads);
      for (bool pdl : {false, true})
        for (bool work : {false, true}) std::printf(" %9.2f", time_chain(blocks, threads, 72, pdl, work, a, b, s));
      std::printf("\n");
    }

  std::printf("\n(c) a busy kernel (132 x 256, shared-memory loop) with a PDL successor that only waits, us per pair\n");
  for (int iters : {2000, 8000}) {
    std::printf("  iters %5d: no waiter %7.2f", iters, time_busy(iters, false, 0, 0, a, s));
    for (auto [wb, wt] : {std::pair{132, 256}, std::pair{192, 128}, std::pair{528, 256}, std::pair{1056, 256}})
      std::printf(" | waiter %4dx%3d %7.2f", wb, wt, time_busy(iters, true, wb, wt, a, s));
    std::printf("\n");
  }

  for (int threads : {256, 512}) {
    std::printf("\n(b) persistent kernel, %d threads, us per barrier [blocks=%d: bare, +work | %d | %d]\n", threads, sms / 2, sms, 2 * sms);
    row<kCoop>(threads, a, b, sync, s, sms);
    row<kCounterFence>(threads, a, b, sync, s, sms);
    row<kCounterRed>(threads, a, b, sync, s, sms);
    row<kCounterRedRelaxedPoll>(threads, a, b, sync, s, sms);
    row<kLastArriver>(threads, a, b, sync, s, sms);
    row<kFlags>(threads, a, b, sync, s, sms);
  }
  return 0;
}
