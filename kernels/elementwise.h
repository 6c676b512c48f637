#pragma once
// Elementwise kernels over contiguous float arrays. CPU twins (the reference the CUDA kernels are
// tested against); OpenMP-parallel above a size threshold, loops written to vectorise.
// ReLU also exists on bf16 arrays (relu_forward_bf16, relu_backward_bf16; one template with the
// float32 kernels on the GPU and in the twins): computed in float, rounded once on the store, so
// the result is the float32 kernel's on the widened input (exact: ReLU moves or zeroes a value; a
// NaN becomes the canonical 0x7fff, kernels/bfloat16.h).
#include <cstddef>
#include <cstdint>

#include "kernels/bfloat16.h"
#include "kernels/queue.h"

namespace chex::kernels {

// *result = the sum of x[0, n), as float (in device memory on a GPU: no host synchronisation),
// summed in double. workspace: sum_workspace_bytes(n) bytes (the GPU's per-block partial sums;
// none on the CPU).
struct SumArgs {
  const float* x = nullptr;
  int64_t n = 0;
  float* result = nullptr;
  void* workspace = nullptr;
};

}  // namespace chex::kernels

// The kernels of this family that both backends provide (engine/src/backend/backend.h), each
// signature written once: the hand-written launchers' list is declared in namespace cpu and in
// CHEX_GPU_NAMESPACE (kernels/elementwise.cu), the library list in namespace cpu and, for cuDNN's
// tensor operations, in engine/src/cuda/library_kernels.h (CHEX_DECLARE_KERNEL, kernels/queue.h).
// Every array has n elements; in-place use (y == a, b or x) is allowed.
//   fill              y = value
//   add_scalar        y += value (in place: a counter kept on the device, never read back)
//   add, sub, mul     y = a + b, a - b, a * b
//   scale             y = factor * a
//   axpy              y += alpha * x
//   relu_backward     dx = dy * (y > 0)
//   relu_forward_bf16, relu_backward_bf16  the same on bf16 arrays (x, y, dy, dx all bf16)
//   sigmoid_backward  dx = dy * y * (1 - y)
//   sum               see SumArgs; sum_workspace_bytes(n) its workspace (0 on the CPU)
//   broadcast_scalar  y[i] = *value;  mul_by_scalar  y[i] = a[i] * *scalar: the scalar in the
//                     device's memory (host memory on the CPU)
#define CHEX_ELEMENTWISE_LAUNCHER_KERNELS(X)                                       \
  X(void, fill, float* y, int64_t n, float value)                                  \
  X(void, add_scalar, float* y, int64_t n, float value)                            \
  X(size_t, sum_workspace_bytes, int64_t n)                                        \
  X(void, sum, const SumArgs& a)                                                   \
  X(void, add, const float* a, const float* b, float* y, int64_t n)                \
  X(void, sub, const float* a, const float* b, float* y, int64_t n)                \
  X(void, mul, const float* a, const float* b, float* y, int64_t n)                \
  X(void, scale, const float* a, float factor, float* y, int64_t n)                \
  X(void, axpy, float alpha, const float* x, float* y, int64_t n)                  \
  X(void, relu_forward, const float* x, float* y, int64_t n)                       \
  X(void, relu_backward, const float* y, const float* dy, float* dx, int64_t n)    \
  X(void, sigmoid_forward, const float* x, float* y, int64_t n)                    \
  X(void, sigmoid_backward, const float* y, const float* dy, float* dx, int64_t n) \
  X(void, relu_forward_bf16, const BFloat16* x, BFloat16* y, int64_t n)            \
  X(void, relu_backward_bf16, const BFloat16* y, const BFloat16* dy, BFloat16* dx, int64_t n)
#define CHEX_ELEMENTWISE_LIBRARY_KERNELS(X)                                      \
  X(void, broadcast_scalar, const float* value, float* y, int64_t n)             \
  X(void, mul_by_scalar, const float* a, const float* scalar, float* y, int64_t n)
#define CHEX_ELEMENTWISE_KERNELS(X)   \
  CHEX_ELEMENTWISE_LAUNCHER_KERNELS(X) \
  CHEX_ELEMENTWISE_LIBRARY_KERNELS(X)

namespace chex::kernels::cpu {

CHEX_ELEMENTWISE_KERNELS(CHEX_DECLARE_KERNEL)

// The sum in double over fixed 4096-element chunks combined in order: the same result for any
// thread count. sum() stores it as float.
double sum_in_double(const float* x, int64_t n);

}  // namespace chex::kernels::cpu

#include "kernels/gpu.h"

namespace chex::kernels::CHEX_GPU_NAMESPACE {

CHEX_ELEMENTWISE_LAUNCHER_KERNELS(CHEX_DECLARE_KERNEL)

// The sum of x in double, written to *result (device memory), deterministically: each of a number
// of blocks fixed by n sums its strided share in double, then one block adds the partial sums in a
// fixed tree. The summation order differs from the CPU twin's (agreement to double rounding), but
// not between runs. `workspace` (device memory) holds sum_workspace_size() doubles; the table's
// sum stores it as float (sum_workspace_bytes: that many doubles).
constexpr int64_t sum_workspace_size() { return 1024; }
void sum_in_double(const float* x, int64_t n, double* workspace, double* result, cudaStream_t stream);

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
