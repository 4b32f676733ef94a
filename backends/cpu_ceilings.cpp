#include "backends/cpu_ceilings.h"

#include "engine/clock.h"
#include "engine/simd.h"

#include <cblas.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace mamba {

namespace {
// Sum of a slice with 16 independent vector accumulators, so the loop is bound by loads, not by adds.
MAMBA_HOT float sum_slice(const float* p, size_t n) {
  float acc[16] = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
#pragma omp simd
    for (int k = 0; k < 16; ++k) acc[k] += p[i + k];
  float s = 0;
  for (; i < n; ++i) s += p[i];
  for (float a : acc) s += a;
  return s;
}
}  // namespace

double cpu_read_bandwidth_gbs(int threads) {
  // Decode reads every weight once per token, so read bandwidth (not copy) is the bound that matters.
  const size_t n = size_t(512) << 20 >> 2;  // 512 MiB of floats, far beyond any cache
  std::vector<float> buf(n);
  omp_set_num_threads(threads);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) buf[i] = float(i & 1023) * 1e-3f;
  double best = 0;
  volatile float sink = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const double t0 = now_seconds();
    float total = 0;
#pragma omp parallel reduction(+ : total)
    {
      const size_t nt = size_t(omp_get_num_threads()), id = size_t(omp_get_thread_num());
      const size_t per = (n / nt + 15) / 16 * 16, begin = std::min(n, id * per), end = std::min(n, begin + per);
      total += sum_slice(buf.data() + begin, end - begin);
    }
    const double s = now_seconds() - t0;
    sink = sink + total;
    best = std::max(best, double(n) * 4 / s / 1e9);
  }
  return best;
}

double cpu_sgemm_gflops(int threads) {
  const int n = 1536;
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n);
  for (size_t i = 0; i < a.size(); ++i) a[i] = float((i * 7919) % 1000) * 1e-3f;
  openblas_set_num_threads(threads);
  omp_set_num_threads(threads);
  double best = 0;
  for (int rep = 0; rep < 4; ++rep) {
    const double t0 = now_seconds();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
    best = std::max(best, 2.0 * n * n * double(n) / (now_seconds() - t0) / 1e9);
  }
  return best;
}

unsigned long long peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<unsigned long long>(ru.ru_maxrss) * 1024ull;
}

}  // namespace mamba
