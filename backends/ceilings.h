#pragma once
// Ceilings of a device measured now (never datasheet numbers), to state benchmark results against.
#include <cstdint>
#include <string>

#include "engine/backend.h"

namespace mamba {

struct DeviceCeilings {
  std::string device_name;
  double read_bandwidth_gbs = 0;  // sustained memory bandwidth
  double matmul_gflops = 0;       // large GEMM in the compute dtype
  std::string matmul_what;        // e.g. "sgemm 1536^3 (OpenBLAS)" or "cublas bf16 8192^3"
};

// "cpu" or "cuda".
DeviceCeilings measure_ceilings(const std::string& device, const BackendOptions& opt);
uint64_t peak_memory_bytes(const std::string& device);  // host RSS for cpu, device allocations for cuda

}  // namespace mamba
