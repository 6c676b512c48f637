#pragma once
// 2-D pooling over NCHW tensors. CPU twins (the reference the CUDA kernels are tested against) and,
// at the end, the CUDA launchers of the max and average pooling.
//
// Inputs x are batch-strided (image n starts at x + n * x_batch_stride, its C*H*W values densely
// packed); outputs and gradients are contiguous. Every (image, channel) plane is independent, so
// planes run in parallel (OpenMP, static schedule) and results do not depend on the thread count.
// Backward kernels overwrite dx entirely.
#include <cstdint>

#include "kernels/queue.h"

// The kernels of this family that both backends provide (engine/src/backend/backend.h).
#define CHEX_POOLING_KERNELS(X) \
  X(max_pool2d_forward)         \
  X(max_pool2d_backward)        \
  X(avg_pool2d_forward)         \
  X(avg_pool2d_backward)        \
  X(global_avg_pool_forward)    \
  X(global_avg_pool_backward)

namespace chex::kernels {

// The shape of a pooling: input planes of height x width, a square kernel x kernel window moved
// by `stride`, with `padding` rows/columns of implicit padding on every side.
struct Pool2dGeometry {
  int64_t batch = 0;
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
  int64_t kernel = 1;
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t out_height = 0;  // pool_output_size(height, kernel, stride, padding)
  int64_t out_width = 0;
};

// Floor division, as PyTorch without ceil_mode: the last window lies inside the padded input.
inline int64_t pool_output_size(int64_t size, int64_t kernel, int64_t stride, int64_t padding) {
  return (size + 2 * padding - kernel) / stride + 1;
}

}  // namespace chex::kernels

namespace chex::kernels::cpu {

// Max pooling; padding counts as -inf. Within a window, the first maximum in row-major scan order
// wins (NaN counts as a maximum, so it propagates).
void max_pool2d_forward(const Queue& q, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g);
// dx = dy routed to each window's maximum (summed where windows overlap). The maximum is found
// again in x, by the same rule as the forward, instead of saving indices.
void max_pool2d_backward(const Queue& q, const float* x, int64_t x_batch_stride, const float* dy, float* dx,
                         const Pool2dGeometry& g);

// Average pooling without padding (g.padding must be 0): the mean of each kernel x kernel window.
void avg_pool2d_forward(const Queue& q, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g);
// dx = dy / kernel^2 spread over each window (summed where windows overlap; 0 where none reaches).
void avg_pool2d_backward(const Queue& q, const float* dy, float* dx, const Pool2dGeometry& g);

// Global average pooling: y[n, c] = mean of the plane x[n, c, :, :] (of `spatial` = H*W values),
// summed in double.
void global_avg_pool_forward(const Queue& q, const float* x, int64_t x_batch_stride, float* y, int64_t batch,
                             int64_t channels, int64_t spatial);
// dx[n, c, :, :] = dy[n, c] / spatial.
void global_avg_pool_backward(const Queue& q, const float* dy, float* dx, int64_t batch, int64_t channels,
                              int64_t spatial);

}  // namespace chex::kernels::cpu

#include "kernels/gpu.h"

namespace chex::kernels::CHEX_GPU_NAMESPACE {

// Max and average pooling (kernels/pooling.cu): the CPU twins' arguments and results (bit for bit:
// the same comparisons and the same order of additions), plus the queue. The backward kernels
// overwrite dx entirely and accumulate overlapping windows in a fixed order, without atomics.
void max_pool2d_forward(const Queue& q, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g);
void max_pool2d_backward(const Queue& q, const float* x, int64_t x_batch_stride, const float* dy, float* dx,
                         const Pool2dGeometry& g);
void avg_pool2d_forward(const Queue& q, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g);
void avg_pool2d_backward(const Queue& q, const float* dy, float* dx, const Pool2dGeometry& g);

// Global average pooling (kernels/global_pool.cu): the same semantics as the CPU twins above, on
// device pointers; the forward sums in double in a fixed order. DenseNet's final BN + ReLU + pool
// is fused in kernels/batchnorm.h.
void global_avg_pool_forward(const Queue& q, const float* x, int64_t x_batch_stride, float* y, int64_t batch,
                             int64_t channels, int64_t spatial);
void global_avg_pool_backward(const Queue& q, const float* dy, float* dx, int64_t batch, int64_t channels,
                              int64_t spatial);

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
