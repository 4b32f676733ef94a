#pragma once
// Lab build: what CudaBackend keeps for measurement (kernels/lab/cuda_backend_lab.cpp).
#include <cstdint>
#include <vector>

#include "kernels/cuda_memory.h"

namespace mamba {

struct CudaLab {
  bool trace = false, chain_trace = false;
  DeviceBuffer trace_buf;        // (3 n_layer + 1, kTraceSlots) u64: a single step's timeline
  DeviceBuffer chain_trace_buf;  // (kMaxChain, n_layer + 3, kTraceSlots) u64: a chain's
  DeviceBuffer records;          // (steps, n_layer, kRecordStride, kDecodeBlockRec) u32: the layer kernel's blocks
  std::vector<uint64_t> chain_trace_host;
};

}  // namespace mamba
