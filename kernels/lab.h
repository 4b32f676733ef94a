#pragma once
// Host side of the lab build (kernels/lab.cuh). LAB_MARK(label, stream) names the operation the lab's
// event-timer profiler (kernels/lab/profiler.h) charges the following GPU time to, and lab::profiling() says
// whether one is attached (operations then run one by one, without graphs). In the library the app links both
// compile to nothing.
#include <cuda_runtime_api.h>

#include "kernels/lab.cuh"

namespace mamba::lab {
#if MAMBA_CUDA_LAB
void mark(const char* label, cudaStream_t s);
bool profiling();
#else
constexpr bool profiling() { return false; }
#endif
}  // namespace mamba::lab

#if MAMBA_CUDA_LAB
#define LAB_MARK(label, stream) ::mamba::lab::mark(label, stream)
#else
#define LAB_MARK(label, stream) ((void)0)
#endif
