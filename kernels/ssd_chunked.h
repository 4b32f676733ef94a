#pragma once
// The chunked SSD (ssd_minimal's four steps) on the GPU: the matrix work in cuBLAS batched GEMMs on
// tensor cores (bf16 operands, fp32 accumulation; pure fp32 in f32 mode), the decay bookkeeping in
// small fp32 kernels. Per layer, with chunks c of Q steps, group g = h / (H/G):
//   CB[c,g]   = C_c B_c^T                                  strided-batched GEMM over chunks
//   xs        = x * exp(cs_end - cs) * dt                  ssd_scale_x (or fused into the conv: args.xs)
//   S_c[h]    = xs_c[h]^T B_c                              batched GEMM over (chunk, head)
//   S_in      = state passing (fp32)                       ssd_state_passing
//   y_off     = C_c S_in[c,h]^T                            batched GEMM
//   M[c,h]    = CB ∘ exp(cs_i - cs_j) ∘ dt_j (j <= i)      ssd_decay_mask
//   y         = M[c,h] x_c[h]                              batched GEMM
//   y        += exp(cs) ∘ y_off                            ssd_scale_rows, or fused into the consumer
// y is fp32, with the D skip only when args.D is given (else the gated norm adds it).
// Fused mode (args.fused, bf16 operands, ssd_chunked_fused_supported): the last four steps are one
// tensor-core kernel (ssd_chunk_scan_fused.cuh) that never materialises M or y_off, and can finish
// with the gate instead of writing y (args.gate).
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "kernels/cuda_memory.h"
#include "kernels/dtype.h"

namespace mamba {

struct SsdChunkedArgs {
  int64_t T_pad = 0, Q = 0, H = 0, P = 0, G = 0, N = 0;  // T_pad: tokens rounded up to a multiple of Q
  const float* x = nullptr;                              // (T_pad, H*P) fp32, row stride ldx (rows past the real tokens are zero)
  int64_t ldx = 0;
  const void* x_act = nullptr;  // the same x, B (T_pad, G*N), C (T_pad, G*N) in dtype, common row stride ld_act
  const void* B_act = nullptr;
  const void* C_act = nullptr;
  int64_t ld_act = 0;
  DType dtype = DType::BF16;
  const float* dt = nullptr;  // (H, T_pad), zero past the real tokens
  const float* cs = nullptr;  // (H, T_pad) within-chunk cumulative dt*A
  float* state = nullptr;     // (H, P, N) in/out
  float* y = nullptr;         // (T_pad, H*P) fp32, row stride ldy
  int64_t ldy = 0;
  // Optional: xs already computed (Conv1dParams::xs), (T_pad, H*P) in dtype, row stride H*P.
  const void* xs = nullptr;
  // Optional: the off-diagonal part goes here unscaled (row stride ldy) and y holds only the diagonal
  // part; the consumer adds exp(cs[h,t]) * y_off (GatedRmsNormParams::y_off). Null: y is complete.
  float* y_off = nullptr;
  // Optional: the skip D[h] x folded into the diagonal GEMM (x then enters in dtype); in fused mode added in
  // fp32 from x. Null: y has no skip.
  const float* D = nullptr;
  // Fused mode: y_off is ignored; with gate.v set, y is not written either: v = (y + D x) * silu(z) and the
  // per-(token, head) sums of squares of v are, for launch_gated_norm_finish (gated_rmsnorm.cuh).
  bool fused = false;
  struct Gate {
    const float* z = nullptr;  // (T_pad, H*P) fp32, row stride ldz
    int64_t ldz = 0;
    void* v = nullptr;  // (T_pad, H*P) in v_dtype (BF16 or F32), row stride ldv
    int64_t ldv = 0;
    DType v_dtype = DType::BF16;
    float* ss = nullptr;  // (T_pad, H)
  } gate;
  int64_t T_valid = 0;             // fused mode: rows t >= T_valid (the padding) are not written; 0: T_pad
  int fused_wn = 1, fused_hb = 1;  // fused mode: the block tiling (SsdChunkScanFusedParams::wn, hb)
  // Probes: the chunks' entry states S_in(c) in fp32 too, (T_pad / Q, H, P, N), or null.
  float* probe_s_in = nullptr;
};

// Whether args can take the fused path (shapes, operand dtype and alignment).
bool ssd_chunked_fused_supported(const SsdChunkedArgs& a);

class SsdChunkedWorkspace {
 public:
  // Sizes the buffers and (re)builds the GEMM pointer arrays when the shapes or operands change.
  void prepare(const SsdChunkedArgs& a, cudaStream_t s);

  DeviceBuffer cb, M, xs, states, s_in;
  DeviceBuffer ptrs;  // 9 arrays of n_chunks*H device pointers
  int64_t batch = 0;

 private:
  std::vector<const void*> m_key;
  std::vector<int64_t> m_dims;
  std::vector<const void*> m_host_ptrs;
};

void ssd_chunked_run(const SsdChunkedArgs& a, SsdChunkedWorkspace& ws, cublasHandle_t blas, cudaStream_t s);

}  // namespace mamba
