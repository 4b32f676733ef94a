#pragma once
// cuBLAS GEMMs in cuBLAS's column-major terms, fp32 accumulation (tensor cores for bf16/f16 operands;
// plain fp32, no TF32, for f32 operands so the f32 mode can serve as a check).
// A row-major (r x c) matrix with row stride ld is the column-major (c x r) matrix with leading dim ld.
#include <cublas_v2.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace mamba {

struct GemmOperand {
  const void* ptr = nullptr;
  DType dtype = DType::F32;
  int64_t ld = 0;
  bool trans = false;
};

// C (m x n, col-major, ldc) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C
void gemm(cublasHandle_t h, int64_t m, int64_t n, int64_t k, const GemmOperand& A, const GemmOperand& B, void* C, DType c_dtype,
          int64_t ldc, float alpha = 1.f, float beta = 0.f);

void gemm_strided_batched(cublasHandle_t h, int64_t m, int64_t n, int64_t k, const GemmOperand& A, int64_t stride_a, const GemmOperand& B,
                          int64_t stride_b, void* C, DType c_dtype, int64_t ldc, int64_t stride_c, int64_t batch, float alpha = 1.f,
                          float beta = 0.f);

// Pointer-array batch: the arrays live in device memory; A.ptr/B.ptr are ignored.
void gemm_batched(cublasHandle_t h, int64_t m, int64_t n, int64_t k, const GemmOperand& A, const void* const* a_array, const GemmOperand& B,
                  const void* const* b_array, void* const* c_array, DType c_dtype, int64_t ldc, int64_t batch, float alpha = 1.f,
                  float beta = 0.f);

}  // namespace mamba
