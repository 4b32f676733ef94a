#pragma once
// The output side of the chunked SSD in one tensor-core kernel (bf16 operands, fp32 accumulation),
// replacing the decay mask, the off-diagonal and diagonal batched GEMMs and the y_off round trip of
// ssd_chunk_scan.cuh. Per chunk c, head h, group g = h / (H/G), rows i, j of the chunk, t = cQ + i:
//   y[t,h,:] = exp(cs[h,t]) C[t,g,:] S_in[c,h]^T                                     (off-diagonal)
//            + sum_{j<=i} CB[c,g][i,j] exp(cs[h,t_i] - cs[h,t_j]) dt[h,t_j] x[t_j,h,:]  (diagonal block)
// A block owns 64 rows of one (chunk, head): the off-diagonal product goes first, its accumulators are
// scaled by exp(cs) in registers, then the decay-masked CB tiles are built in shared memory (bf16) and
// the diagonal product accumulates on top. Only differences of within-chunk sums are exponentiated.
//
// Epilogue, one of:
//  - y:     y = acc (+ D[h] x with x in fp32), fp32;
//  - gated: v = (acc + D[h] x) * silu(z), with x and z in fp32, stored in v_dtype, plus ss[t,h] = sum over
//           the head's P channels of v^2 in fp32 (before v's rounding); gated_norm_finish (gated_rmsnorm.cuh)
//           then completes the grouped RMSNorm. This replaces the gated norm's pass over four fp32 arrays.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace mamba {

struct SsdChunkScanFusedParams {
  int64_t T_pad = 0, Q = 0, H = 0, P = 0, G = 0, N = 0;  // T_pad: a multiple of Q
  int64_t T_valid = 0;                                   // rows t >= T_valid are not written (0: T_pad)
  DType dtype = DType::BF16;                             // operands: BF16 (the backend's SSD operand type in bf16 and f16 modes)
  const void* x_act = nullptr;                           // (T_pad, >= H*P) x in dtype, row stride ld_act
  const void* C_act = nullptr;                           // (T_pad, >= G*N) C in dtype, row stride ld_act
  int64_t ld_act = 0;
  const float* cb = nullptr;   // (n_chunks, G, Q, Q) row-major C_i . B_j
  const void* s_in = nullptr;  // (n_chunks, H, P, N) chunk input states in dtype
  const float* dt = nullptr;   // (H, T_pad)
  const float* cs = nullptr;   // (H, T_pad) within-chunk cumulative dt*A
  const float* x = nullptr;    // (T_pad, >= H*P) fp32 x, row stride ldx; needed with D
  int64_t ldx = 0;
  const float* D = nullptr;  // (H) or null: no skip
  // y epilogue (when v is null)
  float* y = nullptr;  // (T_pad, H*P) fp32, row stride ldy
  int64_t ldy = 0;
  // gated epilogue
  const float* z = nullptr;  // (T_pad, >= H*P) fp32 gate, row stride ldz
  int64_t ldz = 0;
  void* v = nullptr;  // (T_pad, H*P) in v_dtype, row stride ldv
  int64_t ldv = 0;
  DType v_dtype = DType::BF16;  // BF16 or F32
  float* ss = nullptr;          // (T_pad, H) per (token, head) sums of squares of v
  // Block tiling: warps across N (1 or 2) and heads per block (1 or 2). Every tiling computes the same function
  // (tests try them all); 1 x 1 measured fastest on the shapes benchmarked.
  int wn = 1, hb = 1;
};

// Shapes and layouts the kernel handles (P in {16, 32, 64, 128}, N a multiple of 16, bf16 operands,
// 16-byte aligned operand rows); anything else takes the unfused path.
bool ssd_chunk_scan_fused_supported(int64_t P, int64_t N, DType dtype, const void* x_act, const void* C_act, int64_t ld_act);

void launch_ssd_chunk_scan_fused(const SsdChunkScanFusedParams& p, cudaStream_t s);

}  // namespace mamba
