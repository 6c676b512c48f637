// CPU twins of global average pooling's forward on float32 and bf16 inputs (kernels/pooling.h,
// kernels/global_pool.h): one template, each value widened to float and summed in double.
#include "global_pool.h"
#include "pooling.h"

namespace chex::kernels::cpu {
namespace {

constexpr int64_t kParallelThreshold = 1 << 15;  // below it a parallel region costs more than it saves

template <typename T>
void average_planes(const T* x, int64_t x_batch_stride, float* y, int64_t batch, int64_t channels, int64_t spatial) {
  const int64_t planes = batch * channels;
#pragma omp parallel for schedule(static) if (planes * spatial > kParallelThreshold)
  for (int64_t p = 0; p < planes; ++p) {
    const T* plane = x + (p / channels) * x_batch_stride + (p % channels) * spatial;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < spatial; ++i) sum += to_float(plane[i]);
    y[p] = static_cast<float>(sum / static_cast<double>(spatial));
  }
}

}  // namespace

void global_avg_pool_forward(const Queue&, const float* x, int64_t x_batch_stride, float* y, int64_t batch,
                             int64_t channels, int64_t spatial) {
  average_planes(x, x_batch_stride, y, batch, channels, spatial);
}

void global_avg_pool_forward_bf16(const Queue&, const BFloat16* x, int64_t x_batch_stride, float* y, int64_t batch,
                                  int64_t channels, int64_t spatial) {
  average_planes(x, x_batch_stride, y, batch, channels, spatial);
}

}  // namespace chex::kernels::cpu
