#pragma once
// Single-precision GEMM on the CPU, row-major: C = alpha * op(A) * op(B) + beta * C, where op(A) is
// m x k and op(B) is k x n. The backend (oneDNN's dnnl_sgemm by default, or OpenBLAS) is chosen at
// compile time by CHEX_GEMM; both thread internally, so call this outside OpenMP parallel regions.
#include <cstdint>

namespace chex::kernels::cpu {

// lda/ldb/ldc are the row strides (in elements) of A, B and C as stored (before op()).
// m, n or k may be 0; with k == 0, C = beta * C (C is zeroed when beta == 0, NaNs included).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace chex::kernels::cpu

namespace chex::kernels::cpu {
// Tells the GEMM library how many threads to use (OpenBLAS keeps its own pool; oneDNN follows
// OpenMP's setting, so it needs nothing).
void gemm_set_num_threads(int threads);
}  // namespace chex::kernels::cpu
