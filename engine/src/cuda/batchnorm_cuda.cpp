// batch_norm2d on CUDA through cuDNN's spatial batch normalisation, with the fused ReLU as the
// ReLU kernel applied in place. The statistics cuDNN saves (mean, 1/sqrt(var + eps)) are exactly
// what the CPU kernels save, so the op's backward is the same on both devices.
//
// What cuDNN's batch norm cannot express is composed from its tensor ops: the ReLU mask of the
// backward is recomputed from x and the saved statistics, and the backward with fixed statistics
// (eval mode) is the affine dx = gamma · invstd · dy. The inference forward's invstd (saved only
// when a backward follows an eval-mode forward) is a [C] conversion on the host.
#include <cmath>
#include <vector>

#include "chex/error.h"
#include "cuda_backend.h"
#include "cuda_check.h"
#include "cudnn_check.h"
#include "cudnn_descriptors.h"
#include "cudnn_legacy.h"
#include "device_buffer.h"
#include "device_context.h"
#include "kernels/elementwise.h"
#include "ops_cuda.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::cuda {
namespace {

constexpr float kOne = 1.f, kZero = 0.f;
constexpr cudnnBatchNormMode_t kMode = CUDNN_BATCHNORM_SPATIAL;
// cuDNN's backward reads eps only when it is not given the saved statistics, which it always is.
constexpr double kUnusedEps = 1e-5;

// [N, C, H*W, 1] with the given batch stride: cuDNN's batch norm needs only the plane size.
TensorDescriptor images(int64_t batch, int64_t channels, int64_t spatial, int64_t batch_stride) {
  return TensorDescriptor({batch, channels, spatial, 1}, {batch > 1 ? batch_stride : channels * spatial, spatial, 1, 1});
}
TensorDescriptor per_channel(int64_t channels) { return TensorDescriptor({1, channels, 1, 1}, {channels, 1, 1, 1}); }

double checked_eps(float eps) {
  CHEX_CHECK(eps >= CUDNN_BN_MIN_EPSILON, "batch_norm2d on CUDA: eps ", eps, " is below cuDNN's minimum ",
             CUDNN_BN_MIN_EPSILON);
  return eps;
}

// ReLU in place over each image of a batch-strided tensor.
void relu_in_place(const DeviceContext& ctx, float* y, int64_t batch, int64_t image, int64_t batch_stride) {
  if (batch_stride == image || batch == 1) {
    kernels::cuda::relu_forward(y, y, batch * image, ctx.stream);
    return;
  }
  for (int64_t n = 0; n < batch; ++n) kernels::cuda::relu_forward(y + n * batch_stride, y + n * batch_stride, image, ctx.stream);
}

// dy' = dy where z > 0, else 0; z and the result are contiguous, dy batch-strided.
void relu_mask(const DeviceContext& ctx, const float* z, const float* dy, int64_t dy_batch_stride, float* out,
               int64_t batch, int64_t image) {
  if (dy_batch_stride == image || batch == 1) {
    kernels::cuda::relu_backward(z, dy, out, batch * image, ctx.stream);
    return;
  }
  for (int64_t n = 0; n < batch; ++n)
    kernels::cuda::relu_backward(z + n * image, dy + n * dy_batch_stride, out + n * image, image, ctx.stream);
}

// A [C] array computed on the host from another: the rare eval-mode conversions between the
// variance and 1/sqrt(var + eps). Synchronises.
template <typename Fn>
void convert_per_channel(int device, const float* src, float* dst, int64_t channels, Fn fn) {
  std::vector<float> host(static_cast<size_t>(channels));
  copy_device_to_host(host.data(), src, host.size() * sizeof(float), device);
  for (float& v : host) v = fn(v);
  copy_host_to_device(dst, host.data(), host.size() * sizeof(float), device);
}

}  // namespace

void batch_norm_forward_training(int device, const float* x, int64_t x_batch_stride, float* y, int64_t y_batch_stride,
                                 int64_t batch, int64_t channels, int64_t spatial, const float* gamma,
                                 const float* beta, float momentum, float eps, float* running_mean,
                                 float* running_var, float* save_mean, float* save_invstd, bool fuse_relu) {
  if (channels == 0) return;
  const DeviceContext& ctx = context(device);
  // cuDNN saves both statistics or neither.
  const DeviceBuffer scratch(device, save_mean && save_invstd ? 0 : 2 * sizeof(float) * static_cast<size_t>(channels));
  float* mean_out = save_mean ? save_mean : scratch.floats();
  float* invstd_out = save_invstd ? save_invstd : scratch.floats() + channels;
  CHEX_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      ctx.cudnn, kMode, &kOne, &kZero, images(batch, channels, spatial, x_batch_stride).get(), x,
      images(batch, channels, spatial, y_batch_stride).get(), y, per_channel(channels).get(), gamma, beta, momentum,
      running_mean, running_var, checked_eps(eps), mean_out, invstd_out));
  if (fuse_relu) relu_in_place(ctx, y, batch, channels * spatial, y_batch_stride);
}

void batch_norm_forward_inference(int device, const float* x, int64_t x_batch_stride, float* y,
                                  int64_t y_batch_stride, int64_t batch, int64_t channels, int64_t spatial,
                                  const float* gamma, const float* beta, const float* running_mean,
                                  const float* running_var, float eps, float* save_mean, float* save_invstd,
                                  bool fuse_relu) {
  if (channels == 0) return;
  const DeviceContext& ctx = context(device);
  CHEX_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
      ctx.cudnn, kMode, &kOne, &kZero, images(batch, channels, spatial, x_batch_stride).get(), x,
      images(batch, channels, spatial, y_batch_stride).get(), y, per_channel(channels).get(), gamma, beta,
      running_mean, running_var, checked_eps(eps)));
  if (fuse_relu) relu_in_place(ctx, y, batch, channels * spatial, y_batch_stride);
  const size_t bytes = sizeof(float) * static_cast<size_t>(channels);
  if (save_mean) CHEX_CUDA_CHECK(cudaMemcpyAsync(save_mean, running_mean, bytes, cudaMemcpyDeviceToDevice, ctx.stream));
  if (save_invstd)
    convert_per_channel(device, running_var, save_invstd, channels,
                        [eps](float var) { return 1.f / std::sqrt(var + eps); });
}

void batch_norm_backward(int device, const float* x, int64_t x_batch_stride, const float* dy, int64_t dy_batch_stride,
                         float* dx, int64_t dx_batch_stride, int64_t batch, int64_t channels, int64_t spatial,
                         const float* mean, const float* invstd, const float* gamma, const float* beta,
                         bool batch_statistics, bool fuse_relu, float* dgamma, float* dbeta) {
  if (channels == 0) return;
  const DeviceContext& ctx = context(device);
  const int64_t image = channels * spatial;
  const auto c_bytes = sizeof(float) * static_cast<size_t>(channels);
  const auto image_bytes = sizeof(float) * static_cast<size_t>(batch * image);
  const TensorDescriptor x_desc = images(batch, channels, spatial, x_batch_stride);
  const TensorDescriptor packed = images(batch, channels, spatial, image);
  const TensorDescriptor bn = per_channel(channels);
  const OpTensorDescriptor add(CUDNN_OP_TENSOR_ADD), mul(CUDNN_OP_TENSOR_MUL);
  const float minus_one = -1.f;

  // s = gamma · invstd: the slope of the normalisation, per channel.
  const DeviceBuffer slope(device, c_bytes);
  CHEX_CUDNN_CHECK(cudnnOpTensor(ctx.cudnn, mul.get(), &kOne, bn.get(), gamma, &kOne, bn.get(), invstd, &kZero, bn.get(),
                                 slope.floats()));

  // dy' = dy masked by the ReLU, the mask recomputed from x with the saved statistics:
  // z = (x - mean) · s + beta, exactly the forward's formula, in either mode.
  const float* grad = dy;
  int64_t grad_batch_stride = dy_batch_stride;
  const DeviceBuffer masked(device, fuse_relu ? image_bytes : 0);
  if (fuse_relu) {
    const DeviceBuffer centred(device, image_bytes), z(device, image_bytes);
    CHEX_CUDNN_CHECK(cudnnOpTensor(ctx.cudnn, add.get(), &kOne, x_desc.get(), x, &minus_one, bn.get(), mean, &kZero,
                                   packed.get(), centred.floats()));
    CHEX_CUDNN_CHECK(cudnnOpTensor(ctx.cudnn, mul.get(), &kOne, packed.get(), centred.floats(), &kOne, bn.get(),
                                   slope.floats(), &kZero, packed.get(), z.floats()));
    CHEX_CUDNN_CHECK(cudnnAddTensor(ctx.cudnn, &kOne, bn.get(), beta, &kOne, packed.get(), z.floats()));
    relu_mask(ctx, z.floats(), dy, dy_batch_stride, masked.floats(), batch, image);
    grad = masked.floats();
    grad_batch_stride = image;
  }
  const TensorDescriptor grad_desc = images(batch, channels, spatial, grad_batch_stride);
  const TensorDescriptor dx_desc = images(batch, channels, spatial, dx_batch_stride);

  // cuDNN's backward gives dgamma = sum(dy'·xhat) and dbeta = sum(dy') (the same in both modes)
  // and the batch-statistics dx. It writes all three: scratch for those not wanted.
  const bool dx_from_cudnn = batch_statistics && dx;
  const bool need_cudnn = dx_from_cudnn || dgamma || dbeta;
  const DeviceBuffer spare(device, (need_cudnn && !dx_from_cudnn ? image_bytes : 0) + (dgamma ? 0 : c_bytes) +
                                       (dbeta ? 0 : c_bytes));
  if (need_cudnn) {
    float* next = spare.floats();
    auto take = [&next](int64_t n) {
      float* p = next;
      next += n;
      return p;
    };
    float* dx_out = dx_from_cudnn ? dx : take(batch * image);
    float* dgamma_out = dgamma ? dgamma : take(channels);
    float* dbeta_out = dbeta ? dbeta : take(channels);
    CHEX_CUDNN_CHECK(cudnnBatchNormalizationBackward(ctx.cudnn, kMode, &kOne, &kZero, &kOne, &kZero, x_desc.get(), x,
                                                     grad_desc.get(), grad, dx_from_cudnn ? dx_desc.get() : packed.get(),
                                                     dx_out, bn.get(), gamma, dgamma_out, dbeta_out,
                                                     kUnusedEps, mean, invstd));
  }
  // With fixed statistics (eval mode) the normalisation is affine: dx = s · dy'.
  if (!batch_statistics && dx)
    CHEX_CUDNN_CHECK(cudnnOpTensor(ctx.cudnn, mul.get(), &kOne, grad_desc.get(), grad, &kOne, bn.get(),
                                   slope.floats(), &kZero, dx_desc.get(), dx));
}

}  // namespace chex::cuda
CHEX_CUDNN_LEGACY_API_END
