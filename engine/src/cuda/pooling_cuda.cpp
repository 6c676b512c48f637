// Pooling on CUDA: max and average pooling through the hand-written kernels (kernels/pooling.cu,
// bit for bit the CPU twins); global average pooling through cuDNN, as a whole-plane average pool,
// and its backward as a broadcast of dy / (H·W).
#include "chex/error.h"
#include "cudnn_check.h"
#include "cudnn_descriptors.h"
#include "cudnn_legacy.h"
#include "device_context.h"
#include "kernels/pooling.h"
#include "ops_cuda.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::cuda {
namespace {

constexpr float kOne = 1.f, kZero = 0.f;

}  // namespace

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
  if (batch == 0 || channels == 0) return;
  const DeviceContext& ctx = context(device);
  // The plane as [spatial, 1] and one window over all of it.
  const TensorDescriptor x_desc({batch, channels, spatial, 1},
                                {batch > 1 ? x_batch_stride : channels * spatial, spatial, 1, 1});
  const TensorDescriptor y_desc({batch, channels, 1, 1}, {channels, 1, 1, 1});
  cudnnPoolingDescriptor_t raw = nullptr;
  CHEX_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&raw));
  struct Destroy {
    cudnnPoolingDescriptor_t d;
    ~Destroy() { cudnnDestroyPoolingDescriptor(d); }
  } destroy{raw};
  CHEX_CHECK(spatial <= INT32_MAX, "global_avg_pool on CUDA: plane of ", spatial, " values is too large for cuDNN");
  CHEX_CUDNN_CHECK(cudnnSetPooling2dDescriptor(raw, CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING, CUDNN_NOT_PROPAGATE_NAN,
                                               static_cast<int>(spatial), 1, 0, 0, 1, 1));
  CHEX_CUDNN_CHECK(cudnnPoolingForward(ctx.cudnn, raw, &kOne, x_desc.get(), x, &kZero, y_desc.get(), y));
}

void global_avg_pool_backward(int device, const float* dy, float* dx, int64_t batch, int64_t channels,
                              int64_t spatial) {
  if (batch == 0 || channels == 0 || spatial == 0) return;
  const DeviceContext& ctx = context(device);
  const TensorDescriptor dy_desc({batch, channels, 1, 1}, {channels, 1, 1, 1});
  const TensorDescriptor dx_desc({batch, channels, spatial, 1}, {channels * spatial, spatial, 1, 1});
  // dx = dy / spatial broadcast over each plane; beta 0: dx is not read.
  const float inverse = 1.f / static_cast<float>(spatial);
  CHEX_CUDNN_CHECK(cudnnAddTensor(ctx.cudnn, &inverse, dy_desc.get(), dy, &kZero, dx_desc.get(), dx));
}

}  // namespace chex::cuda
CHEX_CUDNN_LEGACY_API_END
