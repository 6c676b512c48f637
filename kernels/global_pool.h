#pragma once
// Global average pooling of bf16 activations into float32: y[n, c] = mean of the plane
// x[n, c, :, :] (`spatial` = H*W values, image n starting at x + n * x_batch_stride), each value
// widened to float and summed in double, so that the result is the float32 kernel's
// (global_avg_pool_forward, kernels/pooling.h) on the widened input; the GPU sums in a fixed order.
// The output, the head's input, stays float32: the classifier and the loss compute in fp32.
// (The float32 kernels stay in pooling.h's list; both are written once, as templates, in
// global_pool_cpu.cpp and global_pool.cu.)
#include <cstdint>

#include "kernels/bfloat16.h"
#include "kernels/queue.h"

#define CHEX_GLOBAL_POOL_KERNELS(X)                                                                                 \
  X(void, global_avg_pool_forward_bf16, const BFloat16* x, int64_t x_batch_stride, float* y, \
    int64_t batch, int64_t channels, int64_t spatial)

namespace chex::kernels::cpu { CHEX_GLOBAL_POOL_KERNELS(CHEX_DECLARE_KERNEL) }

#include "kernels/gpu.h"

namespace chex::kernels::CHEX_GPU_NAMESPACE { CHEX_GLOBAL_POOL_KERNELS(CHEX_DECLARE_KERNEL) }
