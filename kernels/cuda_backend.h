#pragma once
// The CUDA backend's entry points, as backends/ calls them.
#include <cstdint>
#include <memory>
#include <string>

#include "engine/backend.h"

namespace mamba {

// True when a CUDA GPU this build can run on is present; otherwise `why` says why not (no driver,
// no device, too old a GPU). Never aborts: CI builds with nvcc but has no GPU.
bool cuda_device_available(std::string* why);

// opt.dtype: "bf16" (the default for cuda) | "f16" | "f32" (weights in that dtype on the GPU).
std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const Model> model, const BackendOptions& opt);

struct CudaCeilings {
  std::string device_name;
  double read_bandwidth_gbs = 0;
  double matmul_gflops = 0;
  std::string matmul_what;
};

// Device name; bandwidth from a 1 GiB device-to-device copy, counting bytes read + written; the rate of
// an 8192^3 cuBLAS GEMM in the weight dtype (tensor cores for bf16/f16, fp32 accumulation) on random data.
CudaCeilings cuda_measure_ceilings(const BackendOptions& opt);

// Peak bytes this process allocated on the device through the backend (weights, state, workspaces;
// cuBLAS's own small workspace is not counted).
uint64_t cuda_peak_memory_bytes();

}  // namespace mamba
