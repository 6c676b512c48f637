#pragma once
// Element-type conversions between float32 and bf16 buffers: y[i] = x[i] converted, for i < n,
// both contiguous. float -> bf16 rounds to nearest even (NaN to the canonical quiet NaN, values
// past the largest bf16 to infinity: kernels/bfloat16.h); bf16 -> float is exact. CPU twins and GPU
// launchers declared from one list (CHEX_DECLARE_KERNEL, kernels/queue.h); the GPU results are the
// twins' bit for bit. x and y must not overlap.
#include <cstdint>

#include "kernels/bfloat16.h"
#include "kernels/queue.h"

#define CHEX_CAST_KERNELS(X)                                                  \
  X(void, cast_float_to_bf16, const float* x, BFloat16* y, int64_t n) \
  X(void, cast_bf16_to_float, const BFloat16* x, float* y, int64_t n)

// The same conversions over `batch` images of `sample` elements each, image n at x + n *
// x_batch_stride and y + n * y_batch_stride (a channel slice of a dense block's buffer, on either
// side), in one launch: the CUDA bf16 convolutions' casts (engine/src/cuda/conv_bf16_cuda.cpp).
// Not in the backend table: only that code calls them; the twins are the emulated tests' reference.
#define CHEX_CAST_IMAGES_KERNELS(X)                                                                            \
  X(void, cast_float_to_bf16_images, const float* x, int64_t x_batch_stride, BFloat16* y, int64_t y_batch_stride, \
    int64_t batch, int64_t sample)                                                                             \
  X(void, cast_bf16_to_float_images, const BFloat16* x, int64_t x_batch_stride, float* y, int64_t y_batch_stride, \
    int64_t batch, int64_t sample)

namespace chex::kernels::cpu {
CHEX_CAST_KERNELS(CHEX_DECLARE_KERNEL)
CHEX_CAST_IMAGES_KERNELS(CHEX_DECLARE_KERNEL)
}  // namespace chex::kernels::cpu

#include "kernels/gpu.h"

namespace chex::kernels::CHEX_GPU_NAMESPACE {
CHEX_CAST_KERNELS(CHEX_DECLARE_KERNEL)
CHEX_CAST_IMAGES_KERNELS(CHEX_DECLARE_KERNEL)
}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
