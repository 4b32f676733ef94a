#pragma once
// Measurement hooks of the lab build. The profiling tools link mamba_cuda_lab, the same sources compiled with
// MAMBA_CUDA_LAB=1: there a kernel can stamp its timeline with %globaltimer, record per-block clocks, let its
// successor launch at another point, or leave work out. In the library the app links (mamba_cuda) LabHooks is
// empty and every hook below compiles to nothing, so production kernels carry none of it.
#include <cstdint>

#ifndef MAMBA_CUDA_LAB
#define MAMBA_CUDA_LAB 0
#endif

namespace mamba {

// Timeline slots per kernel (%globaltimer, ns): [0] first block started, [1] first block past the PDL wait,
// [2] last block past it, [3] last block done, [4] last block with its inputs read, [5] last block with its
// weights staged, [6] and [7] kernel-specific (decode_layer.cuh).
constexpr int kTraceSlots = 8;

struct LabHooks {
#if MAMBA_CUDA_LAB
  unsigned long long* trace = nullptr;  // this kernel's kTraceSlots stamps, or null
  unsigned* records = nullptr;          // per-block records (the decode layer's DecodeClock), or null
  int trigger = -1;                     // where it lets its successor launch (kernel-specific points); -1: as in production
  int skip = 0;                         // work left out, kernel-specific bits (results are then wrong)
  int variant = 0;                      // a kernel-specific alternative (the streaming GEMV's register pipeline)
#endif
};

#ifdef __CUDACC__
#if MAMBA_CUDA_LAB
__device__ __forceinline__ unsigned long long lab_global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
#endif

__device__ __forceinline__ void lab_trace_start(const LabHooks& l) {
#if MAMBA_CUDA_LAB
  if (l.trace && threadIdx.x == 0) atomicMin(l.trace, lab_global_ns());
#else
  (void)l;
#endif
}
__device__ __forceinline__ void lab_trace_waited(const LabHooks& l) {
#if MAMBA_CUDA_LAB
  if (l.trace && threadIdx.x == 0) {
    const unsigned long long t = lab_global_ns();
    atomicMin(l.trace + 1, t);
    atomicMax(l.trace + 2, t);
  }
#else
  (void)l;
#endif
}
// After a __syncthreads of the caller: the block's step `slot` is done.
__device__ __forceinline__ void lab_trace_mark(const LabHooks& l, int slot) {
#if MAMBA_CUDA_LAB
  if (l.trace && threadIdx.x == 0) atomicMax(l.trace + slot, lab_global_ns());
#else
  (void)l;
  (void)slot;
#endif
}
__device__ __forceinline__ void lab_trace_end(const LabHooks& l) {
#if MAMBA_CUDA_LAB
  if (l.trace) {
    __syncthreads();
    if (threadIdx.x == 0) atomicMax(l.trace + 3, lab_global_ns());
  }
#else
  (void)l;
#endif
}
// Whether the kernel lets its successor launch at `point`: the production choice, unless the lab names a point.
__device__ __forceinline__ bool lab_trigger(const LabHooks& l, int point, bool production) {
#if MAMBA_CUDA_LAB
  return l.trigger < 0 ? production : l.trigger == point;
#else
  (void)l;
  (void)point;
  return production;
#endif
}
__device__ __forceinline__ bool lab_skip(const LabHooks& l, int bit) {
#if MAMBA_CUDA_LAB
  return (l.skip & bit) != 0;
#else
  (void)l;
  (void)bit;
  return false;
#endif
}
#endif  // __CUDACC__

}  // namespace mamba
