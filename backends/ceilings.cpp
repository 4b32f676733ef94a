// The ceilings a benchmark is stated against, measured now on the chosen device.
#include "backends/ceilings.h"

#include <algorithm>
#include <thread>

#include "backends/cpu_ceilings.h"
#include "engine/error.h"

#ifdef MAMBA_HAVE_CUDA
#include "kernels/cuda_backend.h"
#endif

namespace mamba {

DeviceCeilings measure_ceilings(const std::string& device, const BackendOptions& opt) {
  if (device == "cuda") {
#ifdef MAMBA_HAVE_CUDA
    const CudaCeilings c = cuda_measure_ceilings(opt);
    return {c.device_name, c.read_bandwidth_gbs, c.matmul_gflops, c.matmul_what};
#else
    throw Error("this build has no CUDA backend");
#endif
  }
  const int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  DeviceCeilings d;
  d.device_name = "cpu, " + std::to_string(threads) + " threads";
  d.read_bandwidth_gbs = cpu_read_bandwidth_gbs(threads);
  d.matmul_gflops = cpu_sgemm_gflops(threads);
  d.matmul_what = "OpenBLAS sgemm 1536x1536x1536";
  return d;
}

uint64_t peak_memory_bytes(const std::string& device) {
#ifdef MAMBA_HAVE_CUDA
  if (device == "cuda") return cuda_peak_memory_bytes();
#endif
  (void)device;
  return peak_rss_bytes();
}

}  // namespace mamba
