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

namespace chex::kernels::cpu { CHEX_CAST_KERNELS(CHEX_DECLARE_KERNEL) }

#include "kernels/gpu.h"

namespace chex::kernels::CHEX_GPU_NAMESPACE { CHEX_CAST_KERNELS(CHEX_DECLARE_KERNEL) }
