#pragma once
// 2-D pooling over NCHW tensors. CPU twins (the reference the CUDA kernels are tested against) and
// the GPU launchers, both declared from one list: the same signatures by construction.
//
// Inputs x are batch-strided (image n starts at x + n * x_batch_stride, its C*H*W values densely
// packed); outputs and gradients are contiguous. Every (image, channel) plane is independent, so
// planes run in parallel (OpenMP, static schedule) and results do not depend on the thread count.
// Backward kernels overwrite dx entirely.
//
// Max and average pooling exist for float32 and for bf16 activations (the *_bf16 names: x, y, dy
// and dx all bf16), each written once as a template on the element type, on the GPU and in the
// twins: values are widened to float, compared and summed in float exactly as the float32 kernels
// do, and a bf16 result is rounded once, on the store (kernels/bfloat16.h). So a bf16 kernel's
// result is the float32 kernel's on the widened inputs, rounded once: exact for max pooling's
// forward (it moves an element; a NaN becomes the canonical 0x7fff).
#include <cstdint>

#include "kernels/bfloat16.h"
#include "kernels/queue.h"

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

// The kernels of this family that both backends provide (engine/src/backend/backend.h), declared
// from this list in both namespaces (CHEX_DECLARE_KERNEL, kernels/queue.h):
//   max_pool2d_forward        padding counts as -inf. Within a window, the first maximum in
//                             row-major scan order wins (NaN counts as a maximum, so it propagates).
//   max_pool2d_backward       dx = dy routed to each window's maximum (summed where windows
//                             overlap). The maximum is found again in x, by the same rule as the
//                             forward, instead of saving indices.
//   avg_pool2d_forward        without padding (g.padding must be 0): the mean of each window.
//   avg_pool2d_backward       dx = dy / kernel^2 spread over each window (summed where windows
//                             overlap; 0 where none reaches).
//   global_avg_pool_forward   y[n, c] = mean of the plane x[n, c, :, :] (of `spatial` = H*W
//                             values), summed in double (in a fixed order on the GPU).
//   global_avg_pool_backward  dx[n, c, :, :] = dy[n, c] / spatial.
// and max_pool2d_forward_bf16, max_pool2d_backward_bf16, avg_pool2d_forward_bf16,
// avg_pool2d_backward_bf16: the same on bf16 buffers (above).
#define CHEX_POOLING_KERNELS(X)                                                                              \
  X(void, max_pool2d_forward, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g)   \
  X(void, max_pool2d_backward, const float* x, int64_t x_batch_stride, const float* dy, float* dx,         \
    const Pool2dGeometry& g)                                                                                 \
  X(void, avg_pool2d_forward, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g)   \
  X(void, avg_pool2d_backward, const float* dy, float* dx, const Pool2dGeometry& g)                        \
  X(void, max_pool2d_forward_bf16, const BFloat16* x, int64_t x_batch_stride, BFloat16* y,                 \
    const Pool2dGeometry& g)                                                                                 \
  X(void, max_pool2d_backward_bf16, const BFloat16* x, int64_t x_batch_stride, const BFloat16* dy,         \
    BFloat16* dx, const Pool2dGeometry& g)                                                                   \
  X(void, avg_pool2d_forward_bf16, const BFloat16* x, int64_t x_batch_stride, BFloat16* y,                 \
    const Pool2dGeometry& g)                                                                                 \
  X(void, avg_pool2d_backward_bf16, const BFloat16* dy, BFloat16* dx, const Pool2dGeometry& g)             \
  X(void, global_avg_pool_forward, const float* x, int64_t x_batch_stride, float* y, int64_t batch,        \
    int64_t channels, int64_t spatial)                                                                       \
  X(void, global_avg_pool_backward, const float* dy, float* dx, int64_t batch, int64_t channels,           \
    int64_t spatial)

namespace chex::kernels::cpu { CHEX_POOLING_KERNELS(CHEX_DECLARE_KERNEL) }

#include "kernels/gpu.h"

// The GPU launchers (max and average pooling in kernels/pooling.cu, global pooling in
// kernels/global_pool.cu): the CPU twins' results (bit for bit for max and average pooling: the
// same comparisons and the same order of additions). The backward kernels overwrite dx entirely
// and accumulate overlapping windows in a fixed order, without atomics.
namespace chex::kernels::CHEX_GPU_NAMESPACE { CHEX_POOLING_KERNELS(CHEX_DECLARE_KERNEL) }
