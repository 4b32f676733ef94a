#pragma once
// Every CUDA and cuBLAS call goes through these: a failure becomes a mamba::Error naming the call,
// the file and the line, so the GUI and the CLI report it instead of the process aborting.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

namespace mamba {

[[noreturn]] void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t s, const char* call, const char* file, int line);

inline void cuda_check(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess) throw_cuda_error(e, call, file, line);
}
inline void cublas_check(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) throw_cublas_error(s, call, file, line);
}

}  // namespace mamba

#define CUDA_CHECK(call) ::mamba::cuda_check((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) ::mamba::cublas_check((call), #call, __FILE__, __LINE__)
// After a <<<>>> launch: configuration errors surface here, faults at the next synchronising call.
#define CUDA_CHECK_LAUNCH(what) ::mamba::cuda_check(cudaGetLastError(), what, __FILE__, __LINE__)
