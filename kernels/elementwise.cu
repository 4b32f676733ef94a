#include "kernels/dtype.cuh"
#include "kernels/elementwise.cuh"
#include "kernels/launch.cuh"

namespace mamba {

namespace {

__global__ void add_bias_kernel(float* out, int64_t ld, const float* bias, int64_t T, int64_t R) {
  pdl_wait();
  const int64_t t = blockIdx.y;
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < R; r += int64_t(gridDim.x) * blockDim.x) out[t * ld + r] += bias[r];
}

template <typename T>
__global__ void convert_kernel(const float* src, T* dst, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_f32<T>(src[i]);
}

template <typename T>
__global__ void fill_random_kernel(T* dst, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * uint64_t(i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float u = float(z >> 40) * (1.f / 16777216.f);
    dst[i] = from_f32<T>(scale * (2.f * u - 1.f));
  }
}

unsigned grid_for(int64_t n) { return std::max(1u, std::min<unsigned>(ceil_div(n, 256), 65535u)); }

}  // namespace

void launch_add_bias(float* out, int64_t ld, const float* bias, int64_t T, int64_t R, cudaStream_t s) {
  if (T <= 0 || R <= 0) return;
  launch_kernel(add_bias_kernel, dim3(std::min<unsigned>(ceil_div(R, 256), 64u), static_cast<unsigned>(T)), dim3(256), 0, s, false,
                "add_bias_kernel", out, ld, bias, T, R);
}

void launch_convert_f32(const float* src, void* dst, DType dtype, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  MAMBA_DTYPE_SWITCH(
      dtype, T,
      launch_kernel(convert_kernel<T>, dim3(grid_for(n)), dim3(256), 0, s, false, "convert_kernel", src, static_cast<T*>(dst), n));
}

void launch_fill_random(void* dst, DType dtype, int64_t n, uint64_t seed, float scale, cudaStream_t s) {
  if (n <= 0) return;
  MAMBA_DTYPE_SWITCH(dtype, T,
                     launch_kernel(fill_random_kernel<T>, dim3(grid_for(n)), dim3(256), 0, s, false, "fill_random_kernel",
                                   static_cast<T*>(dst), n, seed, scale));
}

bool cuda_kernel_image_ok(std::string* why) {
  cudaFuncAttributes attr{};
  const cudaError_t e = cudaFuncGetAttributes(&attr, convert_kernel<float>);
  if (e == cudaSuccess) return true;
  (void)cudaGetLastError();
  if (why)
    *why = std::string("this build has no kernels for this GPU (") + cudaGetErrorString(e) +
           "); rebuild with -DCMAKE_CUDA_ARCHITECTURES=native";
  return false;
}

}  // namespace mamba
