// The device's two ceilings, measured now (never datasheet numbers): copy bandwidth and GEMM rate.
#include <algorithm>
#include <vector>

#include "kernels/cuda_backend.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_memory.h"
#include "kernels/dtype.h"
#include "kernels/elementwise.cuh"
#include "kernels/gemm.h"

namespace mamba {

namespace {
template <typename F>
double median_ms(int reps, cudaStream_t s, F&& run) {
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    Event a, b;
    a.record(s);
    run();
    b.record(s);
    ms.push_back(b.ms_since(a));
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}
}  // namespace

CudaCeilings cuda_measure_ceilings(const BackendOptions& opt) {
  const DType dt = parse_device_dtype(opt.dtype.empty() ? "bf16" : opt.dtype);
  CUDA_CHECK(cudaSetDevice(opt.device_index));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, opt.device_index));
  CudaCeilings d;
  d.device_name = prop.name;
  Stream stream;
  cudaStream_t s = stream.get();

  {  // 1 GiB device-to-device copy: bytes read + bytes written over the median time
    const size_t bytes = size_t(1) << 30;
    DeviceBuffer a(bytes, "bandwidth test"), b(bytes, "bandwidth test");
    launch_fill_random(a.get(), DType::F32, int64_t(bytes / 4), 7, 1.f, s);
    CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, s));
    const double ms = median_ms(9, s, [&] { CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, s)); });
    d.read_bandwidth_gbs = 2.0 * double(bytes) / (ms * 1e-3) / 1e9;
  }
  {  // square GEMM in the weight dtype, fp32 output and accumulation (as the prefill projections)
    const int64_t n = 8192;
    DeviceBuffer A(dtype_size(dt) * size_t(n * n), "GEMM test"), B(dtype_size(dt) * size_t(n * n), "GEMM test"),
        C(sizeof(float) * size_t(n * n), "GEMM test");
    launch_fill_random(A.get(), dt, n * n, 11, 1.f, s);
    launch_fill_random(B.get(), dt, n * n, 13, 1.f, s);
    CublasHandle h;
    CUBLAS_CHECK(cublasSetStream(h.get(), s));
    auto run = [&] { gemm(h.get(), n, n, n, {A.get(), dt, n, true}, {B.get(), dt, n, false}, C.get(), DType::F32, n); };
    run();
    run();
    const double ms = median_ms(dt == DType::F32 ? 3 : 9, s, run);
    d.matmul_gflops = 2.0 * double(n) * double(n) * double(n) / (ms * 1e-3) / 1e9;
    d.matmul_what = std::string("cublas ") + dtype_name(dt) + " 8192^3 (fp32 accumulate, random data)";
  }
  stream.sync();
  return d;
}

}  // namespace mamba
