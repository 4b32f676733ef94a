#pragma once
// Kernel launch with optional programmatic dependent launch (PDL, Hopper and later): a kernel launched
// with `pdl` may start while its predecessor finishes, runs whatever does not depend on it (weight
// prefetch), then waits in pdl_wait(). Every kernel calls pdl_wait() before reading its inputs, so
// the flag only changes timing, never results. Without PDL both helpers are no-ops.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "kernels/cuda_check.h"

namespace mamba {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// A 16-byte read-only load that does not allocate in L1 (a decode GEMV reads each weight once), under
// an evict_normal L2 policy. The 2.7b decode builds with it measured 2.27-2.47 ms/token on H200s against
// 2.58 for the __ldg build; the spread between them is code generation (docs/CUDA.md).
__device__ __forceinline__ uint64_t l2_policy_normal() {
  uint64_t pol = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(pol));
#endif
  return pol;
}
__device__ __forceinline__ uint4 ldg_stream(const uint4* ptr, uint64_t pol) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(ptr), "l"(pol));
  return v;
#else
  (void)pol;
  return __ldg(ptr);
#endif
}

// Starts pulling [ptr, ptr+bytes) into L2 without occupying registers (a hint; sm_90+ only).
__device__ __forceinline__ void prefetch_l2_bulk(const void* ptr, unsigned bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (bytes >= 16 && (reinterpret_cast<uintptr_t>(ptr) & 15) == 0)
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(ptr), "r"(bytes & ~15u) : "memory");
#else
  (void)ptr;
  (void)bytes;
#endif
}

// The shared-space address of a pointer into this block's shared memory (the operand PTX takes).
__device__ __forceinline__ unsigned smem_u32(const void* p) { return static_cast<unsigned>(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_u32(dst)), "l"(src) : "memory");
#else
  *static_cast<uint4*>(dst) = *static_cast<const uint4*>(src);
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
// Waits until at most N of this thread's most recent cp.async groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait_group() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
#endif
}
__device__ __forceinline__ void cp_async_wait_all() { cp_async_wait_group<0>(); }

// This warp's share of a prefetch of [ptr, ptr+bytes) spread over every warp of the grid: decode
// kernels pull the next layer's weights into L2 while the dependency chain of this layer runs.
__device__ __forceinline__ void prefetch_l2_share(const void* ptr, int64_t bytes) {
  if (!ptr || bytes <= 0 || (threadIdx.x & 31) != 0) return;
  const int64_t warps = int64_t(gridDim.x) * gridDim.y * ((blockDim.x + 31) >> 5);
  const int64_t warp = (int64_t(blockIdx.y) * gridDim.x + blockIdx.x) * ((blockDim.x + 31) >> 5) + (threadIdx.x >> 5);
  const int64_t share = ((bytes + warps - 1) / warps + 15) & ~int64_t(15), begin = warp * share;
  if (begin >= bytes) return;
  const int64_t n = bytes - begin < share ? bytes - begin : share;
  prefetch_l2_bulk(static_cast<const char*>(ptr) + begin, unsigned(n < (int64_t(1) << 30) ? n : (int64_t(1) << 30)));
}

template <typename... KArgs, typename... Args>
void launch_kernel(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, bool pdl, const char* what,
                   Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  if (pdl) {
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  cuda_check(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...), what, __FILE__, __LINE__);
}

__host__ __device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

inline unsigned ceil_div(int64_t a, int64_t b) { return static_cast<unsigned>((a + b - 1) / b); }

// Block-wide sum over blockDim.x threads (a multiple of 32, at most 1024); `scratch` holds 32 floats.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < n_warps ? scratch[lane] : 0.f;
  return warp_sum(v);
}

}  // namespace mamba
