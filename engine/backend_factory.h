#pragma once
// Chooses a backend by device name; knows whether this build has CUDA and whether a GPU is present.
#include <memory>
#include <string>

#include "backend.h"

namespace mamba {

// "cpu" or "cuda"; throws mamba::Error with the reason when the device is unavailable.
std::unique_ptr<Backend> make_backend(const std::string& device, std::shared_ptr<const Model> model, const BackendOptions& opt = {});

// True when a CUDA device can be used; otherwise `why` says why not (not built with CUDA, no GPU, driver).
bool cuda_available(std::string* why = nullptr);

}  // namespace mamba

namespace mamba {

// Ceilings of a device measured now, to state benchmark results against.
struct DeviceCeilings {
  std::string device_name;
  double read_bandwidth_gbs = 0;   // sustained memory bandwidth
  double matmul_gflops = 0;        // large GEMM in the compute dtype
  std::string matmul_what;         // e.g. "sgemm 1536^3 (OpenBLAS)" or "cublas bf16 8192^3"
};
DeviceCeilings measure_ceilings(const std::string& device, const BackendOptions& opt);
uint64_t peak_memory_bytes(const std::string& device);  // host RSS for cpu, device allocations for cuda

}  // namespace mamba
