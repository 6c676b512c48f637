#include "linear.h"

#include <algorithm>

#include "gemm.h"

namespace chex::kernels::cpu {

void linear_forward(const float* x, const float* weight, const float* bias, float* y, int64_t batch, int64_t in,
                    int64_t out) {
  sgemm(false, true, batch, out, in, 1.f, x, in, weight, in, 0.f, y, out);
  if (!bias) return;
  for (int64_t n = 0; n < batch; ++n) {
    float* row = y + n * out;
#pragma omp simd
    for (int64_t o = 0; o < out; ++o) row[o] += bias[o];
  }
}

void linear_backward_data(const float* dy, const float* weight, float* dx, int64_t batch, int64_t in, int64_t out) {
  sgemm(false, false, batch, in, out, 1.f, dy, out, weight, in, 0.f, dx, in);
}

void linear_backward_weight(const float* x, const float* dy, float* dweight, float* dbias, int64_t batch, int64_t in,
                            int64_t out) {
  if (dweight) sgemm(true, false, out, in, batch, 1.f, dy, out, x, in, 0.f, dweight, in);
  if (!dbias) return;
  // Row by row, vectorised across the outputs; the order over the batch is fixed.
  std::fill(dbias, dbias + out, 0.f);
  for (int64_t n = 0; n < batch; ++n) {
    const float* row = dy + n * out;
#pragma omp simd
    for (int64_t o = 0; o < out; ++o) dbias[o] += row[o];
  }
}

}  // namespace chex::kernels::cpu
