// CPU twins of the fp32 <-> bf16 conversions (kernels/cast.h).
#include "cast.h"

namespace chex::kernels::cpu {
namespace {

constexpr int64_t kParallelThreshold = 1 << 16;  // below it a parallel region costs more than it saves

template <typename From, typename To>
void convert(const From* x, To* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = from_float<To>(to_float(x[i]));
}

template <typename From, typename To>
void convert_images(const From* x, int64_t x_batch_stride, To* y, int64_t y_batch_stride, int64_t batch,
                    int64_t sample) {
  for (int64_t n = 0; n < batch; ++n) convert(x + n * x_batch_stride, y + n * y_batch_stride, sample);
}

}  // namespace

void cast_float_to_bf16(const Queue&, const float* x, BFloat16* y, int64_t n) { convert(x, y, n); }

void cast_bf16_to_float(const Queue&, const BFloat16* x, float* y, int64_t n) { convert(x, y, n); }

void cast_float_to_bf16_images(const Queue&, const float* x, int64_t x_batch_stride, BFloat16* y,
                               int64_t y_batch_stride, int64_t batch, int64_t sample) {
  convert_images(x, x_batch_stride, y, y_batch_stride, batch, sample);
}

void cast_bf16_to_float_images(const Queue&, const BFloat16* x, int64_t x_batch_stride, float* y,
                               int64_t y_batch_stride, int64_t batch, int64_t sample) {
  convert_images(x, x_batch_stride, y, y_batch_stride, batch, sample);
}

}  // namespace chex::kernels::cpu
