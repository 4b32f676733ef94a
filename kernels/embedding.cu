#include "kernels/dtype.cuh"
#include "kernels/embedding.cuh"
#include "kernels/launch.cuh"

namespace mamba {

namespace {
template <typename T>
__global__ void embedding_kernel(EmbeddingParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t t = blockIdx.y;
  const T* row = static_cast<const T*>(p.table) + int64_t(p.ids[t]) * p.D;
  for (int64_t d = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; d < p.D; d += int64_t(gridDim.x) * blockDim.x)
    p.out[t * p.D + d] = to_f32(row[d]);
}
}  // namespace

void launch_embedding(const EmbeddingParams& p, cudaStream_t s, bool pdl) {
  if (p.T <= 0) return;
  const dim3 grid(std::min<unsigned>(ceil_div(p.D, 256), 64u), static_cast<unsigned>(p.T));
  MAMBA_DTYPE_SWITCH(p.dtype, T, launch_kernel(embedding_kernel<T>, grid, dim3(256), 0, s, pdl, "embedding_kernel", p));
}

}  // namespace mamba
