// batch_norm2d on CUDA through the hand-written kernels (kernels/batchnorm.cu), with their
// per-block partial sums in scratch from the device allocator (stream-ordered, so it may be
// released as soon as the launch is enqueued).
#include "device_buffer.h"
#include "device_context.h"
#include "kernels/batchnorm.h"
#include "ops_cuda.h"

namespace chex::cuda {

void batch_norm_forward_training(int device, const float* x, int64_t x_batch_stride, float* y, int64_t y_batch_stride,
                                 int64_t batch, int64_t channels, int64_t spatial, const float* gamma,
                                 const float* beta, float momentum, float eps, float* running_mean,
                                 float* running_var, float* save_mean, float* save_invstd, bool fuse_relu) {
  const DeviceContext& ctx = context(device);
  const DeviceBuffer workspace(device, kernels::cuda::batch_norm_workspace_bytes(batch, channels, spatial));
  kernels::cuda::batch_norm_forward_training(x, x_batch_stride, y, y_batch_stride, batch, channels, spatial, gamma,
                                             beta, momentum, eps, running_mean, running_var, save_mean, save_invstd,
                                             fuse_relu, workspace.get(), ctx.stream);
}

void batch_norm_forward_inference(int device, const float* x, int64_t x_batch_stride, float* y,
                                  int64_t y_batch_stride, int64_t batch, int64_t channels, int64_t spatial,
                                  const float* gamma, const float* beta, const float* running_mean,
                                  const float* running_var, float eps, float* save_mean, float* save_invstd,
                                  bool fuse_relu) {
  kernels::cuda::batch_norm_forward_inference(x, x_batch_stride, y, y_batch_stride, batch, channels, spatial, gamma,
                                              beta, running_mean, running_var, eps, save_mean, save_invstd, fuse_relu,
                                              context(device).stream);
}

void batch_norm_backward(int device, const float* x, int64_t x_batch_stride, const float* dy, int64_t dy_batch_stride,
                         float* dx, int64_t dx_batch_stride, int64_t batch, int64_t channels, int64_t spatial,
                         const float* mean, const float* invstd, const float* gamma, const float* beta,
                         bool batch_statistics, bool fuse_relu, float* dgamma, float* dbeta) {
  const DeviceContext& ctx = context(device);
  const DeviceBuffer workspace(device, kernels::cuda::batch_norm_workspace_bytes(batch, channels, spatial));
  kernels::cuda::batch_norm_backward(x, x_batch_stride, dy, dy_batch_stride, dx, dx_batch_stride, batch, channels,
                                     spatial, mean, invstd, gamma, beta, batch_statistics, fuse_relu, dgamma, dbeta,
                                     workspace.get(), ctx.stream);
}

void batch_norm_apply(int device, const float* x, int64_t x_batch_stride, float* y, int64_t y_batch_stride,
                      int64_t batch, int64_t channels, int64_t spatial, const float* mean, const float* invstd,
                      const float* gamma, const float* beta, bool fuse_relu) {
  kernels::cuda::batch_norm_apply(x, x_batch_stride, y, y_batch_stride, batch, channels, spatial, mean, invstd, gamma,
                                  beta, fuse_relu, context(device).stream);
}

}  // namespace chex::cuda
