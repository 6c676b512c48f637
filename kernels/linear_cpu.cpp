#include "linear.h"

#include <algorithm>

#include "gemm.h"

namespace chex::kernels::cpu {

void linear_forward(const Queue& /*q*/, const LinearForwardArgs& a) {
  // Plain copies, not a structured binding: clang cannot use a binding inside an OpenMP loop.
  const int64_t batch = a.shape.batch, in = a.shape.in, out = a.shape.out;
  sgemm(false, true, batch, out, in, 1.f, a.x, in, a.weight, in, 0.f, a.y, out);
  if (!a.bias) return;
  for (int64_t n = 0; n < batch; ++n) {
    float* row = a.y + n * out;
#pragma omp simd
    for (int64_t o = 0; o < out; ++o) row[o] += a.bias[o];
  }
}

void linear_backward_data(const Queue& /*q*/, const LinearBackwardDataArgs& a) {
  const int64_t batch = a.shape.batch, in = a.shape.in, out = a.shape.out;
  sgemm(false, false, batch, in, out, 1.f, a.dy, out, a.weight, in, 0.f, a.dx, in);
}

void linear_backward_weight(const Queue& /*q*/, const LinearBackwardWeightArgs& a) {
  const int64_t batch = a.shape.batch, in = a.shape.in, out = a.shape.out;
  if (a.dweight) sgemm(true, false, out, in, batch, 1.f, a.dy, out, a.x, in, 0.f, a.dweight, in);
  if (!a.dbias) return;
  // Row by row, vectorised across the outputs; the order over the batch is fixed.
  float* dbias = a.dbias;
  std::fill(dbias, dbias + out, 0.f);
  for (int64_t n = 0; n < batch; ++n) {
    const float* row = a.dy + n * out;
#pragma omp simd
    for (int64_t o = 0; o < out; ++o) dbias[o] += row[o];
  }
}

}  // namespace chex::kernels::cpu
