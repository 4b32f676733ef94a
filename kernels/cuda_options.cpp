#include "kernels/cuda_options.h"

#include <cstdlib>
#include <string>

#include "engine/error.h"

namespace mamba {

namespace {

// The variable's integer value in [lo, hi], `dflt` when unset or empty; anything else is an error.
int64_t env_int(const char* name, int64_t dflt, int64_t lo, int64_t hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return dflt;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw Error(std::string(name) + "='" + v + "': expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  return x;
}

}  // namespace

void CudaOptions::validate() const {
  if (chain < 0 || chain > kMaxChain) throw Error("CUDA options: chain must be 0.." + std::to_string(kMaxChain));
  if (layer_cluster != 0 && layer_cluster != 2 && layer_cluster != 4 && layer_cluster != 8 && layer_cluster != 16)
    throw Error("CUDA options: the layer cluster size must be 0, 2, 4, 8 or 16");
  if (segment < 256 || segment > 32768) throw Error("CUDA options: the segment length must be 256..32768");
}

const CudaOptions& CudaOptions::from_env() {
  static const CudaOptions opt = [] {
    CudaOptions o;
    o.graphs = env_int("MAMBA_CUDA_GRAPH", 1, 0, 1) != 0;
    o.pdl = env_int("MAMBA_CUDA_PDL", 1, 0, 1) != 0;
    o.chain = int(env_int("MAMBA_CUDA_CHAIN", o.chain, 0, kMaxChain));
    o.validate();
    return o;
  }();
  return opt;
}

}  // namespace mamba
