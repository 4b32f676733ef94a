// mamba-sync-bench: what one dependency step costs on this GPU, measured alone, before building decode on
// it (a lab tool: cmake --build build --target mamba-sync-bench).
// Each "step" is the decode pattern: every block writes its slice of a vector of D floats, every block
// then needs the whole vector (read from L2, block sum, tiny compute). Measured as
//  (a) a CUDA graph of N dependent kernels (with and without programmatic dependent launch), and
//  (b) one persistent kernel with N grid-wide barriers of several kinds.
#include <cooperative_groups.h>

#include <cuda_runtime.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <utility>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/cuda_memory.h"
#include "kernels/launch.cuh"

namespace cg = cooperative_groups;
using namespace mamba;

constexpr int kD = 768;

__device__ __forceinline__ float ld_cg(const float* p) {
  float v;
  asm volatile("ld.global.cg.f32 %0, [%1];" : "=f"(v) : "l"(p) : "memory");
  return v;
}

// Captures what `enqueue` launches on `s` into a graph, replays it `warm` times, then times `reps` replays.
template <typename F>
double graph_replay_ms(cudaStream_t s, int warm, int reps, F enqueue) {
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  enqueue();
  cudaGraph_t g = nullptr;
  CUDA_CHECK(cudaStreamEndCapture(s, &g));
  GraphExec ge;
  ge.instantiate(g);
  for (int i = 0; i < warm; ++i) ge.launch(s);
  Event e0, e1;
  e0.record(s);
  for (int i = 0; i < reps; ++i) ge.launch(s);
  e1.record(s);
  return double(e1.ms_since(e0)) / reps;
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
    pdl_launch_dependents();
    pdl_wait();
  }
  step_work(in, out, scratch, do_work);
}

double time_chain(int blocks, int threads, int n, bool pdl, bool work, float* a, float* b, cudaStream_t s) {
  const double ms = graph_replay_ms(s, 3, 50, [&] {
    for (int i = 0; i < n; ++i) {
      const float* in = (i & 1) ? b : a;
      float* out = (i & 1) ? a : b;
      launch_kernel(chain_kernel, dim3(blocks), dim3(threads), 0, s, pdl, "chain_kernel", in, out, int(work), int(pdl));
    }
  });
  return 1000.0 * ms / n;  // us per kernel
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
const char* kind_name[] = {"cg grid.sync()",
                           "atomicAdd+threadfence, poll counter",
                           "red.release, poll counter (acquire)",
                           "red.release, poll relaxed + fence",
                           "last arriver sets flag line",
                           "per-block flags, warp polls all"};

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
        while (ld_acquire(sync) < target) {}
      } else if constexpr (KIND == kCounterRed) {
        red_release_add(sync, 1u);
        while (ld_acquire(sync) < target) {}
      } else if constexpr (KIND == kCounterRedRelaxedPoll) {
        red_release_add(sync, 1u);
        while (ld_relaxed(sync) < target) {}
        __threadfence();
      } else if constexpr (KIND == kLastArriver) {
        const unsigned old = atom_acq_rel_add(sync, 1u);
        if (old == target - 1) st_release(sync + 32, epoch);
        else
          while (ld_acquire(sync + 32) < epoch) {}
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
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k, threads, 0));
  int sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  if (blocks > per_sm * sms) return -1;
  int w = int(work);
  void* args[] = {&a, &b, &sync, &n, &w};
  double best = 1e30;
  for (int rep = 0; rep < 4; ++rep) {
    CUDA_CHECK(cudaMemsetAsync(sync, 0, 4096 * 4, s));
    Event e0, e1;
    e0.record(s);
    CUDA_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<void*>(k), dim3(blocks), dim3(threads), args, 0, s));
    e1.record(s);
    const double ms = e1.ms_since(e0);
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
  if (trigger) pdl_launch_dependents();
  pdl_wait();
  for (int i = threadIdx.x; i < 1024; i += blockDim.x) buf[i] = float(i);
  __syncthreads();
  float acc = 0.f;
  for (int it = 0; it < iters; ++it) acc += buf[(threadIdx.x * 7 + it) & 1023] * 1.0001f;
  if (acc == 12345.f) out[0] = acc;  // keeps the loop
}
__global__ void waiter_kernel(float* out) {
  pdl_wait();
  if (threadIdx.x == 0 && blockIdx.x == 0) out[1] = 1.f;
}

double time_busy(int iters, bool waiter, int waiter_blocks, int waiter_threads, float* out, cudaStream_t s) {
  const double ms = graph_replay_ms(s, 1, 20, [&] {
    for (int i = 0; i < 20; ++i) {
      launch_kernel(busy_kernel, dim3(132), dim3(256), 0, s, true, "busy_kernel", out, iters, int(waiter));
      if (waiter) launch_kernel(waiter_kernel, dim3(waiter_blocks), dim3(waiter_threads), 0, s, true, "waiter_kernel", out);
    }
  });
  return 1000.0 * ms / 20;  // us per busy kernel (+ its waiter)
}

int main(int argc, char** argv) {
  CLI::App app{"mamba-sync-bench: what one dependency step costs on this GPU (kernel boundaries with and without PDL, grid barriers)"};
  int device = 0;
  app.add_option("--device", device, "CUDA device index")->capture_default_str()->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    CUDA_CHECK(cudaSetDevice(device));
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    const int sms = prop.multiProcessorCount;
    std::printf("%s, %d SMs\n", prop.name, sms);
    DeviceBuffer da(4 * kD * sizeof(float)), db(4 * kD * sizeof(float)), dsync(4096 * sizeof(unsigned));
    float* a = da.as<float>();
    float* b = db.as<float>();
    unsigned* sync = dsync.as<unsigned>();
    std::vector<float> h(kD, 1.f);
    CUDA_CHECK(cudaMemcpy(a, h.data(), kD * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(b, h.data(), kD * sizeof(float), cudaMemcpyHostToDevice));
    Stream stream;
    const cudaStream_t s = stream.get();

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
      std::printf("\n(b) persistent kernel, %d threads, us per barrier [blocks=%d: bare, +work | %d | %d]\n", threads, sms / 2, sms,
                  2 * sms);
      row<kCoop>(threads, a, b, sync, s, sms);
      row<kCounterFence>(threads, a, b, sync, s, sms);
      row<kCounterRed>(threads, a, b, sync, s, sms);
      row<kCounterRedRelaxedPoll>(threads, a, b, sync, s, sms);
      row<kLastArriver>(threads, a, b, sync, s, sms);
      row<kFlags>(threads, a, b, sync, s, sms);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
