#include "kernels/gemm.h"

#include <climits>

#include "engine/error.h"
#include "kernels/cuda_check.h"

namespace mamba {

namespace {
int to_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX) throw Error(std::string("GEMM dimension ") + what + " out of cuBLAS's int range");
  return static_cast<int>(v);
}
cublasOperation_t op(const GemmOperand& x) { return x.trans ? CUBLAS_OP_T : CUBLAS_OP_N; }
}  // namespace

void gemm(cublasHandle_t h, int64_t m, int64_t n, int64_t k, const GemmOperand& A, const GemmOperand& B, void* C, DType c_dtype,
          int64_t ldc, float alpha, float beta) {
  if (m == 0 || n == 0) return;
  CUBLAS_CHECK(cublasGemmEx(h, op(A), op(B), to_int(m, "m"), to_int(n, "n"), to_int(k, "k"), &alpha, A.ptr, cuda_data_type(A.dtype),
                            to_int(A.ld, "lda"), B.ptr, cuda_data_type(B.dtype), to_int(B.ld, "ldb"), &beta, C, cuda_data_type(c_dtype),
                            to_int(ldc, "ldc"), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void gemm_strided_batched(cublasHandle_t h, int64_t m, int64_t n, int64_t k, const GemmOperand& A, int64_t stride_a, const GemmOperand& B,
                          int64_t stride_b, void* C, DType c_dtype, int64_t ldc, int64_t stride_c, int64_t batch, float alpha, float beta) {
  if (m == 0 || n == 0 || batch == 0) return;
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, op(A), op(B), to_int(m, "m"), to_int(n, "n"), to_int(k, "k"), &alpha, A.ptr,
                                          cuda_data_type(A.dtype), to_int(A.ld, "lda"), stride_a, B.ptr, cuda_data_type(B.dtype),
                                          to_int(B.ld, "ldb"), stride_b, &beta, C, cuda_data_type(c_dtype), to_int(ldc, "ldc"), stride_c,
                                          to_int(batch, "batch"), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void gemm_batched(cublasHandle_t h, int64_t m, int64_t n, int64_t k, const GemmOperand& A, const void* const* a_array, const GemmOperand& B,
                  const void* const* b_array, void* const* c_array, DType c_dtype, int64_t ldc, int64_t batch, float alpha, float beta) {
  if (m == 0 || n == 0 || batch == 0) return;
  CUBLAS_CHECK(cublasGemmBatchedEx(h, op(A), op(B), to_int(m, "m"), to_int(n, "n"), to_int(k, "k"), &alpha, a_array,
                                   cuda_data_type(A.dtype), to_int(A.ld, "lda"), b_array, cuda_data_type(B.dtype), to_int(B.ld, "ldb"),
                                   &beta, c_array, cuda_data_type(c_dtype), to_int(ldc, "ldc"), to_int(batch, "batch"), CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT));
}

}  // namespace mamba
