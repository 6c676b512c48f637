// Pooling on CUDA through the hand-written kernels: max and average pooling (kernels/pooling.cu,
// bit for bit the CPU twins) and global average pooling (kernels/global_pool.cu).
#include "device_context.h"
#include "kernels/pooling.h"
#include "ops_cuda.h"

namespace chex::cuda {

void max_pool2d_forward(int device, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g) {
  kernels::cuda::max_pool2d_forward(x, x_batch_stride, y, g, context(device).stream);
}
void max_pool2d_backward(int device, const float* x, int64_t x_batch_stride, const float* dy, float* dx,
                         const Pool2dGeometry& g) {
  kernels::cuda::max_pool2d_backward(x, x_batch_stride, dy, dx, g, context(device).stream);
}
void avg_pool2d_forward(int device, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g) {
  kernels::cuda::avg_pool2d_forward(x, x_batch_stride, y, g, context(device).stream);
}
void avg_pool2d_backward(int device, const float* dy, float* dx, const Pool2dGeometry& g) {
  kernels::cuda::avg_pool2d_backward(dy, dx, g, context(device).stream);
}

void global_avg_pool_forward(int device, const float* x, int64_t x_batch_stride, float* y, int64_t batch,
                             int64_t channels, int64_t spatial) {
  kernels::cuda::global_avg_pool_forward(x, x_batch_stride, y, batch, channels, spatial, context(device).stream);
}
void global_avg_pool_backward(int device, const float* dy, float* dx, int64_t batch, int64_t channels,
                              int64_t spatial) {
  kernels::cuda::global_avg_pool_backward(dy, dx, batch, channels, spatial, context(device).stream);
}

}  // namespace chex::cuda
