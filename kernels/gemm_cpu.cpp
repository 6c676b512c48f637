#include "gemm.h"

#include "chex/error.h"

#if defined(CHEX_GEMM_ONEDNN)
#include <oneapi/dnnl/dnnl.h>
#elif defined(CHEX_GEMM_OPENBLAS)
#include <cblas.h>
#else
#error "define CHEX_GEMM_ONEDNN or CHEX_GEMM_OPENBLAS (CMake sets one from CHEX_GEMM)"
#endif

namespace chex::kernels::cpu {
namespace {

// C = beta * C for an m x n block; the libraries are not asked to do this because some of them
// reject k == 0 (a leading dimension of 0 for A).
void scale_block(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.f) {
      for (int64_t j = 0; j < n; ++j) row[j] = 0.f;  // not beta * C: 0 * NaN is NaN
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  CHEX_CHECK(m >= 0 && n >= 0 && k >= 0, "sgemm: negative size m=", m, " n=", n, " k=", k);
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale_block(m, n, beta, c, ldc);
    return;
  }
#if defined(CHEX_GEMM_ONEDNN)
  const dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb,
                                          beta, c, ldc);
  CHEX_CHECK(status == dnnl_success, "sgemm: dnnl_sgemm failed with status ", static_cast<int>(status), " (m=", m,
             " n=", n, " k=", k, " lda=", lda, " ldb=", ldb, " ldc=", ldc, " trans_a=", trans_a,
             " trans_b=", trans_b, ")");
#else
  // cblas takes int sizes; the shapes of this engine stay far below 2^31.
  CHEX_CHECK(m < (int64_t{1} << 31) && n < (int64_t{1} << 31) && k < (int64_t{1} << 31),
             "sgemm: sizes too large for cblas: m=", m, " n=", n, " k=", k);
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b,
              static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
#endif
}

}  // namespace chex::kernels::cpu

namespace chex::kernels::cpu {

void gemm_set_num_threads([[maybe_unused]] int threads) {
#if defined(CHEX_GEMM_OPENBLAS)
  openblas_set_num_threads(threads);
#endif
}

}  // namespace chex::kernels::cpu
