#pragma once
// Machine ceilings measured in the same run as a benchmark, so results can be stated against them.
namespace mamba {

// Sustained read bandwidth in GB/s (a sum over a buffer much larger than the caches), `threads` OpenMP threads.
double cpu_read_bandwidth_gbs(int threads);
// Large single-precision GEMM rate through BLAS, GFLOP/s.
double cpu_sgemm_gflops(int threads);
// Peak resident memory of this process so far, bytes.
unsigned long long peak_rss_bytes();

}  // namespace mamba
