#pragma once
// The CUDA backend's settings. Three may come from the environment, read once per process by
// CudaOptions::from_env() (the backend's only reader of the environment) and validated there:
//   MAMBA_CUDA_GRAPH=0|1    decode steps replay one captured CUDA graph each (1, the default), or launch
//                           their kernels one by one
//   MAMBA_CUDA_PDL=0|1      programmatic dependent launch between decode kernels (1; sm_90 and later):
//                           a kernel starts while its predecessor finishes and waits inside
//   MAMBA_CUDA_CHAIN=0..64  decode steps per graph when sampling on the device (32); 0 or 1: one per call
// None changes results (tests hold graphs = launches, PDL = none, chains = single steps bit for bit), only speed.
// The rest is set in code by tests and the lab tools: alternative paths that compute the same function.
#include <cstdint>

namespace mamba {

struct CudaOptions {
  bool graphs = true;
  bool pdl = true;
  int chain = 32;
  static constexpr int kMaxChain = 64;

  bool layer_fused = true;  // decode in one kernel per layer where the shape and GPU allow (decode_layer.cuh)
  int layer_cluster = 0;    // that kernel's cluster size (2, 4, 8 or 16) when it fits; 0: the planner's choice
  bool fused_scan = true;   // prefill's fused chunk-scan kernel where supported (ssd_chunk_scan_fused.cuh)
  int64_t segment = 8192;   // longest prompt piece per pass, 256..32768 (a multiple of the chunk size is used)

  void validate() const;  // throws Error naming the setting
  // The defaults above with the environment's settings applied; read and validated on the first call.
  static const CudaOptions& from_env();
};

}  // namespace mamba
