#include "backend_factory.h"

#include "error.h"

#ifdef MAMBA_HAVE_CUDA
#include "cuda_backend.h"
#endif

namespace mamba {

bool cuda_available(std::string* why) {
#ifdef MAMBA_HAVE_CUDA
  return cuda_device_available(why);
#else
  if (why) *why = "this build has no CUDA backend (configured without a CUDA compiler)";
  return false;
#endif
}

std::unique_ptr<Backend> make_backend(const std::string& device, std::shared_ptr<const Model> model, const BackendOptions& opt) {
  if (device == "cpu") return make_cpu_backend(std::move(model), opt);
  if (device == "cuda") {
    std::string why;
    if (!cuda_available(&why)) throw Error("CUDA is not available: " + why);
#ifdef MAMBA_HAVE_CUDA
    return make_cuda_backend(std::move(model), opt);
#endif
  }
  throw Error("unknown device '" + device + "' (expected cpu or cuda)");
}

}  // namespace mamba

#include <thread>

#include "sysbench.h"

namespace mamba {

DeviceCeilings measure_ceilings(const std::string& device, const BackendOptions& opt) {
  if (device == "cuda") {
#ifdef MAMBA_HAVE_CUDA
    return cuda_measure_ceilings(opt);
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
