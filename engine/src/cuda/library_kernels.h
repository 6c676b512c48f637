#pragma once
// The CUDA backend's kernels that call NVIDIA's libraries (cuDNN convolutions and tensor operations,
// cuBLAS GEMMs) instead of a hand-written launcher: the CPU twins' signatures, in the namespace of
// the other CUDA launchers, so that the CUDA table (cuda_kernels.cpp) takes them like any other.
// Hidden, like every kernel: libchex's interface is its ops.
#include "kernels/conv2d.h"
#include "kernels/elementwise.h"
#include "kernels/linear.h"

#pragma GCC visibility push(hidden)
namespace chex::kernels::cuda {

// cuDNN picks its algorithm and takes its workspace from the device allocator (stream-ordered)
// itself: these return 0 and the workspace fields are ignored.
size_t conv2d_workspace_bytes(const Queue& q, const Conv2dGeometry& g);
size_t conv2d_backward_workspace_bytes(const Queue& q, const Conv2dGeometry& g);
void conv2d_forward(const Queue& q, const Conv2dForwardArgs& a);
void conv2d_backward_data(const Queue& q, const Conv2dBackwardDataArgs& a);
void conv2d_backward_weight(const Queue& q, const Conv2dBackwardWeightArgs& a);

void linear_forward(const Queue& q, const LinearForwardArgs& a);
void linear_backward_data(const Queue& q, const LinearBackwardDataArgs& a);
void linear_backward_weight(const Queue& q, const LinearBackwardWeightArgs& a);

// cuDNN's tensor operations, with a scalar in device memory.
void broadcast_scalar(const Queue& q, const float* value, float* y, int64_t n);
void mul_by_scalar(const Queue& q, const float* a, const float* scalar, float* y, int64_t n);

}  // namespace chex::kernels::cuda
#pragma GCC visibility pop
