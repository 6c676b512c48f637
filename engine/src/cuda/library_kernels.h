#pragma once
// The CUDA backend's kernels that call NVIDIA's libraries (cuDNN convolutions and tensor operations,
// cuBLAS GEMMs) instead of a hand-written launcher, declared from the families' lists
// (CHEX_DECLARE_KERNEL, kernels/queue.h): the CPU twins' signatures by construction, in the
// namespace of the other CUDA launchers, so that the CUDA table (cuda_kernels.cpp) takes them like
// any other. Hidden, like every kernel: libchex's interface is its ops.
//
// cuDNN picks its convolution algorithm and takes its workspace from the device allocator
// (stream-ordered) itself: the conv2d workspace kernels return 0 and the workspace fields are
// ignored (the bf16 convolutions' cast buffers come from there too). broadcast_scalar and
// mul_by_scalar are cuDNN's tensor operations, with the scalar in device memory.
#include "device_context.h"
#include "kernels/conv2d.h"
#include "kernels/elementwise.h"
#include "kernels/linear.h"

#pragma GCC visibility push(hidden)
namespace chex::kernels::cuda {
CHEX_CONV2D_KERNELS(CHEX_DECLARE_KERNEL)
CHEX_CONV2D_BF16_KERNELS(CHEX_DECLARE_KERNEL)
CHEX_LINEAR_KERNELS(CHEX_DECLARE_KERNEL)
CHEX_ELEMENTWISE_LIBRARY_KERNELS(CHEX_DECLARE_KERNEL)

// What the files that define them share: the device's stream and library handles, and the
// alpha/beta scalars that cuDNN and cuBLAS take by pointer.
using chex::cuda::context;
using chex::cuda::DeviceContext;
inline constexpr float kOne = 1.f, kZero = 0.f;
}  // namespace chex::kernels::cuda
#pragma GCC visibility pop
