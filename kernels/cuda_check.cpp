#include "kernels/cuda_check.h"

#include <string>

#include "engine/error.h"
#include "kernels/dtype.h"

namespace mamba {

void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line) {
  std::string msg = std::string("CUDA error ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ") in " + call + " at " + file + ":" +
                    std::to_string(line);
  if (e == cudaErrorMemoryAllocation) msg = "out of GPU memory: " + msg;
  throw Error(msg);
}

void throw_cublas_error(cublasStatus_t s, const char* call, const char* file, int line) {
  std::string msg = std::string("cuBLAS error ") + cublasGetStatusName(s) + " (" + cublasGetStatusString(s) + ") in " + call + " at " +
                    file + ":" + std::to_string(line);
  if (s == CUBLAS_STATUS_ALLOC_FAILED) msg = "out of GPU memory: " + msg;
  throw Error(msg);
}

DType parse_device_dtype(const std::string& s) {
  if (s == "f32" || s == "fp32" || s == "float32") return DType::F32;
  if (s == "bf16" || s == "bfloat16") return DType::BF16;
  if (s == "f16" || s == "fp16" || s == "float16") return DType::F16;
  throw Error("unknown dtype '" + s + "' (expected bf16, f16 or f32)");
}

}  // namespace mamba
