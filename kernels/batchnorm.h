#pragma once
// Batch normalisation over NCHW tensors, per channel, with an optional fused ReLU. CPU twins (the
// reference the CUDA kernels are tested against).
//
// Every image tensor is "batch-strided": within one image the C*H*W values are densely packed, and
// image n starts at data + n * batch_stride, batch_stride >= C*H*W. A channel slice of a dense
// block's buffer is such a tensor, so the layers read it in place. `spatial` is H*W.
//
// Normalisation is always y = (x - mean_c) * invstd_c * gamma_c + beta_c (then ReLU if fused), where
// (mean, invstd) are the batch statistics in training and the running statistics in inference. The
// backward takes the same (mean, invstd) and recomputes what it needs from x, never from y.
//
// Channels are processed in parallel (OpenMP, static schedule); each channel's sums run serially
// in double, so results do not depend on the thread count.
#include <cstddef>
#include <cstdint>

#include "kernels/bfloat16.h"
#include "kernels/queue.h"

namespace chex::kernels::cpu {

// One BN+ReLU output, given scale = invstd * gamma: the formula of every CPU kernel that applies
// them, here and in the convolutions that normalise their input as they read it (conv2d.h), so that
// all give the same bits. NaN passes, as in PyTorch: a diverged step must show.
inline float batch_norm_relu(float x, float mean, float scale, float beta) {
  const float v = (x - mean) * scale + beta;
  return v < 0.f ? 0.f : v;
}

}  // namespace chex::kernels::cpu

namespace chex::kernels {

// The arguments of the forwards. x and y are [batch, channels, spatial], batch-strided; gamma,
// beta and the statistics are [channels]. Training normalises with the batch statistics and moves
// the running ones; inference normalises with the running ones and leaves them unchanged.
// save_mean and save_invstd receive the (mean, invstd) used, unless null (no backward follows).
// T is the element type of x and y (float, or BFloat16 for the *_bf16 forwards); every other array
// is float32.
template <typename T>
struct BasicBatchNormForwardArgs {
  ImageShape shape;
  Strided<const T> x;
  Strided<T> y;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float* running_mean = nullptr;  // read only in inference
  float* running_var = nullptr;
  float momentum = 0.1f;          // training only
  float eps = 1e-5f;
  float* save_mean = nullptr;
  float* save_invstd = nullptr;
  bool fuse_relu = false;
  void* workspace = nullptr;  // training on the GPU: batch_norm_workspace_bytes(shape)
};
using BatchNormForwardArgs = BasicBatchNormForwardArgs<float>;
using BatchNormForwardArgsBf16 = BasicBatchNormForwardArgs<BFloat16>;

// Normalising with given (mean, invstd): the recomputation of a BN(+ReLU) output in the backward of
// a memory-efficient dense block, bitwise equal to the forward that produced them. T as above.
template <typename T>
struct BasicBatchNormApplyArgs {
  ImageShape shape;
  Strided<const T> x;
  Strided<T> y;
  const float* mean = nullptr;
  const float* invstd = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  bool fuse_relu = false;
};
using BatchNormApplyArgs = BasicBatchNormApplyArgs<float>;
using BatchNormApplyArgsBf16 = BasicBatchNormApplyArgs<BFloat16>;

// The backward. With fuse_relu, the ReLU mask is recomputed from x, mean, invstd, gamma and beta.
// Writes (each may be null when not wanted):
//   dgamma_c = sum(dy' * xhat),  dbeta_c = sum(dy'),  where dy' = dy masked by the ReLU if fused
//   dx = gamma * invstd * (dy' - mean(dy') - xhat * mean(dy' * xhat))   if batch_statistics (training)
//   dx = gamma * invstd * dy'                                            otherwise (fixed statistics)
// with xhat = (x - mean) * invstd and the means over the N*H*W values of the channel.
// dx may be the same buffer as dy, with the same batch stride (in place): each channel's dy is read
// in full before its dx is written, element by element.
// T is the element type of x, dy and dx (float, or BFloat16 for batch_norm_backward_bf16); the
// statistics, parameters and their gradients are float32.
template <typename T>
struct BasicBatchNormBackwardArgs {
  ImageShape shape;
  Strided<const T> x;
  Strided<const T> dy;
  Strided<T> dx;
  const float* mean = nullptr;
  const float* invstd = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;  // only read with fuse_relu
  bool batch_statistics = true;
  bool fuse_relu = false;
  float* dgamma = nullptr;
  float* dbeta = nullptr;
  void* workspace = nullptr;  // on the GPU: batch_norm_workspace_bytes(shape), unless no sums are needed
};
using BatchNormBackwardArgs = BasicBatchNormBackwardArgs<float>;
using BatchNormBackwardArgsBf16 = BasicBatchNormBackwardArgs<BFloat16>;

// The arguments of the optional kernels (see their declarations below). Moments and sums are in
// double, in the device's memory like every other pointer. T is the element type of x (float, or
// BFloat16 for batch_norm_moments_bf16).
template <typename T>
struct BasicBatchNormMomentsArgs {
  ImageShape shape;
  Strided<const T> x;
  double* mean = nullptr;  // [channels]
  double* var = nullptr;   // [channels], biased
  void* workspace = nullptr;  // on the GPU: batch_norm_workspace_bytes(shape), as the training forward
};
using BatchNormMomentsArgs = BasicBatchNormMomentsArgs<float>;
using BatchNormMomentsArgsBf16 = BasicBatchNormMomentsArgs<BFloat16>;

struct BatchNormStatisticsFromMomentsArgs {
  const double* mean = nullptr;
  const double* var = nullptr;
  int64_t channels = 0;
  int64_t count = 0;  // N*H*W, the values behind each moment
  float momentum = 0.1f;
  float eps = 1e-5f;
  float* running_mean = nullptr;
  float* running_var = nullptr;
  float* save_mean = nullptr;
  float* save_invstd = nullptr;
};

struct BatchNormInferenceStatisticsArgs {
  const float* running_mean = nullptr;
  const float* running_var = nullptr;
  int64_t channels = 0;
  float eps = 1e-5f;
  float* save_mean = nullptr;
  float* save_invstd = nullptr;
};

struct BatchNormStatisticsTermArgs {
  const double* sum_dy = nullptr;
  const double* sum_dy_centered = nullptr;
  int64_t channels = 0;
  int64_t count = 0;
  const float* invstd = nullptr;
  const float* gamma = nullptr;
  double* alpha = nullptr;  // added into
  double* beta = nullptr;   // added into
};

struct AddAffineOfInputArgs {
  ImageShape shape;
  StridedIn x;
  StridedOut dx;
  const float* center = nullptr;  // [channels]
  const double* alpha = nullptr;
  const double* beta = nullptr;
};

}  // namespace chex::kernels

// The kernels of this family that both backends provide (engine/src/backend/backend.h):
//   batch_norm_workspace_bytes   device scratch, in bytes, that the training forward and the backward
//                                of this shape need for their per-block partial sums (0 when there
//                                is nothing to sum; always 0 on the CPU). A function of the shape
//                                only; the caller owns it, and it may be reused as soon as the
//                                launch's stream has moved on.
//   batch_norm_forward_training  each channel's batch mean and biased variance over N*H*W values, then
//                                  running_mean = (1 - momentum) * running_mean + momentum * mean
//                                  running_var  = (1 - momentum) * running_var + momentum * var * n / (n - 1)
//                                (unbiased). Needs n = N*H*W > 1 (the GPU launcher n >= 1, and a
//                                workspace of batch_norm_workspace_bytes).
//   batch_norm_forward_inference normalises with the running statistics.
//   batch_norm_apply             normalises with given (mean, invstd).
//   batch_norm_backward          on the GPU the workspace may be null when neither dgamma nor dbeta
//                                is wanted and batch_statistics is false.
//   batch_norm_forward_training_bf16, batch_norm_forward_inference_bf16, batch_norm_apply_bf16,
//   batch_norm_backward_bf16
//                                the same on bf16 x, y, dy and dx (gamma, beta, the statistics, the
//                                parameter gradients and the workspace as for float32): each value
//                                widened, summed in double and normalised or differentiated in float
//                                as the float32 kernel does, the result rounded once on the store;
//                                one template with the float32 kernel, on the GPU and in the twin.
#define CHEX_BATCHNORM_KERNELS(X)                                               \
  X(size_t, batch_norm_workspace_bytes, const ImageShape& shape)                \
  X(void, batch_norm_forward_training, const BatchNormForwardArgs& a)           \
  X(void, batch_norm_forward_inference, const BatchNormForwardArgs& a)          \
  X(void, batch_norm_apply, const BatchNormApplyArgs& a)                        \
  X(void, batch_norm_backward, const BatchNormBackwardArgs& a)                  \
  X(void, batch_norm_forward_training_bf16, const BatchNormForwardArgsBf16& a)  \
  X(void, batch_norm_forward_inference_bf16, const BatchNormForwardArgsBf16& a) \
  X(void, batch_norm_apply_bf16, const BatchNormApplyArgsBf16& a)               \
  X(void, batch_norm_backward_bf16, const BatchNormBackwardArgsBf16& a)

// The parts of a training BN for a caller that keeps batch moments or normalises inside a
// convolution (conv2d.h's normalized kernels): optional, a backend may leave them null; ask
// Backend::has() before calling one. The CPU has all of them; the GPU only the first three
// (CHEX_BATCHNORM_MOMENTS_KERNELS, declared in both namespaces), the rest only in namespace cpu.
//   batch_norm_moments, batch_norm_statistics_from_moments: the training forward in parts.
//     batch_norm_moments writes each channel's mean and biased variance over its N*H*W values, in
//     double, exactly as the training forward computes them; batch_norm_statistics_from_moments
//     turns them into the (save_mean, save_invstd) that the forward would have normalised with and
//     moves the running statistics as it would (count = N*H*W). Together, and with
//     batch_norm_apply, the same bits as batch_norm_forward_training of the same x (on the GPU:
//     of the same shape, with x and y both 16-byte aligned or not, which decides how the values
//     are summed). The memory-efficient dense block keeps the moments of its buffer's channels,
//     which every later layer's norm1 would otherwise recompute. On the GPU the moments need the
//     training forward's workspace (batch_norm_workspace_bytes); the statistics are one thread per
//     channel.
//   batch_norm_inference_statistics: the (mean, invstd) that batch_norm_forward_inference
//     normalises with.
//   batch_norm_backward_statistics_term: the part of a training BN's input gradient that goes
//     through its batch statistics,
//       dx_c -= gamma_c invstd_c (mean(dy') + xhat * mean(dy' * xhat)),
//     is affine in x_c - mean_c: alpha_c + beta_c (x_c - mean_c). From the sums of dy' and of
//     dy' (x - mean) over the `count` values of each channel, this adds the channels' alpha and
//     beta into `alpha` and `beta`. BNs that read the same channels with the same batch mean (a
//     dense block's norm1s) can sum theirs and add them once per channel (add_affine_of_input)
//     instead of once per BN; centred on the mean, the sum does not cancel when |mean| >> std.
//   add_affine_of_input: dx_c += alpha_c + beta_c (x_c - center_c) over every image, for
//     `channels` channels.
//   batch_norm_moments_bf16: batch_norm_moments of a bf16 x (the moments of the widened values, as
//     batch_norm_forward_training_bf16 computes them).
#define CHEX_BATCHNORM_MOMENTS_KERNELS(X)                                                 \
  X(void, batch_norm_moments, const BatchNormMomentsArgs& a)                               \
  X(void, batch_norm_moments_bf16, const BatchNormMomentsArgsBf16& a)                      \
  X(void, batch_norm_statistics_from_moments, const BatchNormStatisticsFromMomentsArgs& a)
#define CHEX_BATCHNORM_OPTIONAL_KERNELS(X)                                                  \
  CHEX_BATCHNORM_MOMENTS_KERNELS(X)                                                         \
  X(void, batch_norm_inference_statistics, const BatchNormInferenceStatisticsArgs& a)       \
  X(void, batch_norm_backward_statistics_term, const BatchNormStatisticsTermArgs& a)        \
  X(void, add_affine_of_input, const AddAffineOfInputArgs& a)

namespace chex::kernels::cpu {
CHEX_BATCHNORM_KERNELS(CHEX_DECLARE_KERNEL)
CHEX_BATCHNORM_OPTIONAL_KERNELS(CHEX_DECLARE_KERNEL)
}  // namespace chex::kernels::cpu

#include "kernels/gpu.h"

// The CUDA kernels (kernels/batchnorm.cu): the same semantics as the CPU twins, on device
// pointers.
// Sums run in double with a fixed reduction order, so results do not depend on the schedule or the
// GPU; they match the twins to rounding (see tests/emu/test_kernel_batchnorm.cpp for tolerances).
// In-place use (y == x, dx == dy or dx == x) is allowed.
namespace chex::kernels::CHEX_GPU_NAMESPACE {
CHEX_BATCHNORM_KERNELS(CHEX_DECLARE_KERNEL)
CHEX_BATCHNORM_MOMENTS_KERNELS(CHEX_DECLARE_KERNEL)

// Whether the training forward, inference and backward of this shape, on contiguous 16-byte
// aligned tensors, hold each channel in one block's registers and read x (and dy) once rather
// than twice: what bench_kernels counts as the bytes they move.
bool batch_norm_one_pass(const ImageShape& shape);
}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
