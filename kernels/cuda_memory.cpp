#include "kernels/cuda_memory.h"

#include <atomic>
#include <string>

#include "engine/error.h"
#include "kernels/cuda_check.h"

namespace mamba {

namespace {
std::atomic<uint64_t> g_in_use{0}, g_peak{0};

void count_alloc(size_t n) {
  const uint64_t now = g_in_use.fetch_add(n) + n;
  uint64_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {}
}

std::string mib(double bytes) { return std::to_string(static_cast<long long>(bytes / (1024.0 * 1024.0))) + " MiB"; }
}  // namespace

uint64_t device_bytes_in_use() { return g_in_use.load(); }
uint64_t device_bytes_peak() { return g_peak.load(); }

DeviceBuffer::DeviceBuffer(size_t bytes, const char* what) { reserve(bytes, what); }

bool DeviceBuffer::reserve(size_t bytes, const char* what) {
  if (bytes <= m_bytes && m_ptr) return false;
  release();
  if (bytes == 0) return false;
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear the (non-sticky) error so the context stays usable
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    throw Error(std::string("out of GPU memory: allocating ") + mib(double(bytes)) + " for " + what + " failed (" + mib(double(free_b)) +
                " free of " + mib(double(total_b)) + "; this process holds " + mib(double(device_bytes_in_use())) +
                "). Try a shorter prompt, a smaller model or --dtype bf16.");
  }
  cuda_check(e, "cudaMalloc", __FILE__, __LINE__);
  m_ptr = p;
  m_bytes = bytes;
  count_alloc(bytes);
  return true;
}

void DeviceBuffer::release() noexcept {
  if (m_ptr) {
    cudaFree(m_ptr);
    g_in_use.fetch_sub(m_bytes);
  }
  m_ptr = nullptr;
  m_bytes = 0;
}

PinnedBuffer::PinnedBuffer(size_t bytes) : m_bytes(bytes) { CUDA_CHECK(cudaMallocHost(&m_ptr, bytes)); }
PinnedBuffer::~PinnedBuffer() {
  if (m_ptr) cudaFreeHost(m_ptr);
}

Stream::Stream() { CUDA_CHECK(cudaStreamCreateWithFlags(&m_s, cudaStreamNonBlocking)); }
Stream::~Stream() {
  if (m_s) cudaStreamDestroy(m_s);
}
void Stream::sync() const { CUDA_CHECK(cudaStreamSynchronize(m_s)); }

Event::Event(bool timing) { CUDA_CHECK(cudaEventCreateWithFlags(&m_e, timing ? cudaEventDefault : cudaEventDisableTiming)); }
Event::~Event() {
  if (m_e) cudaEventDestroy(m_e);
}
void Event::record(cudaStream_t s) { CUDA_CHECK(cudaEventRecord(m_e, s)); }
float Event::ms_since(const Event& start) const {
  CUDA_CHECK(cudaEventSynchronize(m_e));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start.m_e, m_e));
  return ms;
}

CublasHandle::CublasHandle() { CUBLAS_CHECK(cublasCreate(&m_h)); }
CublasHandle::~CublasHandle() {
  if (m_h) cublasDestroy(m_h);
}

void GraphExec::reset() noexcept {
  if (m_exec) cudaGraphExecDestroy(m_exec);
  m_exec = nullptr;
}

void GraphExec::instantiate(cudaGraph_t graph) {
  reset();
  const cudaError_t e = cudaGraphInstantiate(&m_exec, graph, 0);
  cudaGraphDestroy(graph);
  if (e != cudaSuccess) {
    m_exec = nullptr;
    cuda_check(e, "cudaGraphInstantiate", __FILE__, __LINE__);
  }
}

void GraphExec::launch(cudaStream_t s) const { CUDA_CHECK(cudaGraphLaunch(m_exec, s)); }

}  // namespace mamba
