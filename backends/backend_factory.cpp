#include "backends/backend_factory.h"

#include "engine/error.h"

#ifdef MAMBA_HAVE_CUDA
#include "kernels/cuda_backend.h"
#include "kernels/mamba1_backend.h"
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
    if (model && model->config.mamba1()) return make_cuda_mamba1_backend(std::move(model), opt);
    return make_cuda_backend(std::move(model), opt);
#endif
  }
  throw Error("unknown device '" + device + "' (expected cpu or cuda)");
}

}  // namespace mamba
