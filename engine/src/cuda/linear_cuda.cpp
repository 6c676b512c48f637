// linear on CUDA: cuBLAS sgemm on row-major arrays. cuBLAS is column-major, and a row-major
// [r, c] matrix is the column-major [c, r] matrix of its transpose, so each product is computed
// transposed: y^T = W x^T becomes sgemm(T, N) on the same pointers, and so on. The bias goes
// through cuDNN (broadcast add; per-feature sum for its gradient).
#include "chex/error.h"
#include "cuda_check.h"
#include "cublas_library.h"
#include "cudnn_check.h"
#include "cudnn_descriptors.h"
#include "cudnn_legacy.h"
#include "device_context.h"
#include "library_kernels.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::kernels::cuda {
namespace {

using chex::cuda::cublas;
using chex::cuda::TensorDescriptor;

int blas_int(int64_t v) {
  CHEX_CHECK(v >= 0 && v <= INT32_MAX, "linear: dimension ", v, " does not fit cuBLAS's int");
  return static_cast<int>(v);
}

// Row-major C[m, n] = A[m, k] · B[k, n] with optional transposes, on row-major storage.
// (Column-major: C^T = op(B)^T · op(A)^T, so A and B swap places.)
void gemm_row_major(const DeviceContext& ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                    const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: C = 0 (cuBLAS would leave C alone)
    CHEX_CUDA_CHECK(cudaMemsetAsync(c, 0, sizeof(float) * static_cast<size_t>(m * ldc), ctx.stream));
    return;
  }
  CHEX_CUBLAS_CHECK(cublas().sgemm(ctx.cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                   blas_int(n), blas_int(m), blas_int(k), &kOne, b, blas_int(ldb), a,
                                   blas_int(lda), &kZero, c, blas_int(ldc)));
}

// [batch, features] as cuDNN's [batch, features, 1, 1], and the per-feature [1, features, 1, 1].
TensorDescriptor rows(int64_t batch, int64_t features) {
  return TensorDescriptor({batch, features, 1, 1}, {features, 1, 1, 1});
}

}  // namespace

void linear_forward(const Queue& q, const LinearForwardArgs& a) {
  const auto [batch, in, out] = a.shape;
  const float *x = a.x, *weight = a.weight, *bias = a.bias;
  float* y = a.y;
  const DeviceContext& ctx = context(q.device);
  // y[batch, out] = x[batch, in] · weight[out, in]^T
  gemm_row_major(ctx, false, true, batch, out, in, x, in, weight, in, y, out);
  if (bias && batch > 0 && out > 0)
    CHEX_CUDNN_CHECK(cudnnAddTensor(ctx.cudnn, &kOne, rows(1, out).get(), bias, &kOne, rows(batch, out).get(), y));
}

void linear_backward_data(const Queue& q, const LinearBackwardDataArgs& a) {
  const auto [batch, in, out] = a.shape;
  // dx[batch, in] = dy[batch, out] · weight[out, in]
  gemm_row_major(context(q.device), false, false, batch, in, out, a.dy, out, a.weight, in, a.dx, in);
}

void linear_backward_weight(const Queue& q, const LinearBackwardWeightArgs& a) {
  const auto [batch, in, out] = a.shape;
  const float *x = a.x, *dy = a.dy;
  float *dweight = a.dweight, *dbias = a.dbias;
  const DeviceContext& ctx = context(q.device);
  // dweight[out, in] = dy[batch, out]^T · x[batch, in]
  if (dweight) gemm_row_major(ctx, true, false, out, in, batch, dy, out, x, in, dweight, in);
  if (dbias && out > 0) {
    if (batch == 0)
      CHEX_CUDA_CHECK(cudaMemsetAsync(dbias, 0, sizeof(float) * static_cast<size_t>(out), ctx.stream));
    else
      CHEX_CUDNN_CHECK(cudnnConvolutionBackwardBias(ctx.cudnn, &kOne, rows(batch, out).get(), dy, &kZero,
                                                    rows(1, out).get(), dbias));
  }
}

}  // namespace chex::kernels::cuda
CHEX_CUDNN_LEGACY_API_END
