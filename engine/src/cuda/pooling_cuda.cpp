// Pooling on CUDA through cuDNN: max pooling (deterministic mode, -inf padding) and average
// pooling over batch-strided inputs; global average pooling as a whole-plane average pool, and
// its backward as a broadcast of dy / (H·W).
#include "chex/error.h"
#include "cudnn_check.h"
#include "cudnn_descriptors.h"
#include "cudnn_legacy.h"
#include "device_buffer.h"
#include "device_context.h"
#include "ops_cuda.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::cuda {
namespace {

constexpr float kOne = 1.f, kZero = 0.f;

TensorDescriptor input_of(const Pool2dGeometry& g, int64_t batch_stride) {
  const int64_t packed = g.channels * g.height * g.width;
  return TensorDescriptor({g.batch, g.channels, g.height, g.width},
                          {g.batch > 1 ? batch_stride : packed, g.height * g.width, g.width, 1});
}
TensorDescriptor output_of(const Pool2dGeometry& g) {
  const Shape shape{g.batch, g.channels, g.out_height, g.out_width};
  return TensorDescriptor(shape, contiguous_strides(shape));
}
bool empty(const Pool2dGeometry& g) { return g.batch == 0 || g.channels == 0; }

void pool_forward(int device, PoolingDescriptor::Mode mode, const float* x, int64_t x_batch_stride, float* y,
                  const Pool2dGeometry& g) {
  if (empty(g)) return;
  const DeviceContext& ctx = context(device);
  const PoolingDescriptor pool(mode, g.kernel, g.stride, g.padding);
  CHEX_CUDNN_CHECK(cudnnPoolingForward(ctx.cudnn, pool.get(), &kOne, input_of(g, x_batch_stride).get(), x, &kZero,
                                       output_of(g).get(), y));
}

}  // namespace

void max_pool2d_forward(int device, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g) {
  pool_forward(device, PoolingDescriptor::Mode::max, x, x_batch_stride, y, g);
}

void max_pool2d_backward(int device, const float* x, int64_t x_batch_stride, const float* dy, float* dx,
                         const Pool2dGeometry& g) {
  if (empty(g)) return;
  const DeviceContext& ctx = context(device);
  const PoolingDescriptor pool(PoolingDescriptor::Mode::max, g.kernel, g.stride, g.padding);
  const TensorDescriptor x_desc = input_of(g, x_batch_stride), y_desc = output_of(g);
  const Shape dx_shape{g.batch, g.channels, g.height, g.width};
  const TensorDescriptor dx_desc(dx_shape, contiguous_strides(dx_shape));
  // cuDNN locates each window's maximum by comparing x with y: recompute y (the op saves x only).
  const DeviceBuffer y(device, sizeof(float) * static_cast<size_t>(g.batch * g.channels * g.out_height * g.out_width));
  CHEX_CUDNN_CHECK(cudnnPoolingForward(ctx.cudnn, pool.get(), &kOne, x_desc.get(), x, &kZero, y_desc.get(), y.floats()));
  CHEX_CUDNN_CHECK(cudnnPoolingBackward(ctx.cudnn, pool.get(), &kOne, y_desc.get(), y.floats(), y_desc.get(), dy,
                                        x_desc.get(), x, &kZero, dx_desc.get(), dx));
}

void avg_pool2d_forward(int device, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g) {
  pool_forward(device, PoolingDescriptor::Mode::average, x, x_batch_stride, y, g);
}

void avg_pool2d_backward(int device, const float* dy, float* dx, const Pool2dGeometry& g) {
  if (empty(g)) return;
  const DeviceContext& ctx = context(device);
  const PoolingDescriptor pool(PoolingDescriptor::Mode::average, g.kernel, g.stride, g.padding);
  const TensorDescriptor y_desc = output_of(g);
  const Shape dx_shape{g.batch, g.channels, g.height, g.width};
  const TensorDescriptor dx_desc(dx_shape, contiguous_strides(dx_shape));
  // Average pooling's gradient needs neither y nor x; cuDNN still takes them, so dy and dx stand
  // in (same shapes, never read for this mode).
  CHEX_CUDNN_CHECK(cudnnPoolingBackward(ctx.cudnn, pool.get(), &kOne, y_desc.get(), dy, y_desc.get(), dy,
                                        dx_desc.get(), dx, &kZero, dx_desc.get(), dx));
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
