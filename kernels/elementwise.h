#pragma once
// Elementwise kernels over contiguous float arrays. CPU twins (the reference the CUDA kernels are
// tested against); OpenMP-parallel above a size threshold, loops written to vectorise.
#include <cstddef>
#include <cstdint>

#include "kernels/queue.h"

// The kernels of this family that both backends provide (engine/src/backend/backend.h). On CUDA,
// broadcast_scalar and mul_by_scalar are cuDNN's tensor operations (engine/src/cuda).
#define CHEX_ELEMENTWISE_KERNELS(X) \
  X(fill)                           \
  X(broadcast_scalar)               \
  X(mul_by_scalar)                  \
  X(sum_workspace_bytes)            \
  X(sum)                            \
  X(add)                            \
  X(sub)                            \
  X(mul)                            \
  X(scale)                          \
  X(axpy)                           \
  X(relu_forward)                   \
  X(relu_backward)                  \
  X(sigmoid_forward)                \
  X(sigmoid_backward)

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

namespace chex::kernels::cpu {

void fill(const Queue& q, float* y, int64_t n, float value);
void add(const Queue& q, const float* a, const float* b, float* y, int64_t n);       // y = a + b
void sub(const Queue& q, const float* a, const float* b, float* y, int64_t n);       // y = a - b
void mul(const Queue& q, const float* a, const float* b, float* y, int64_t n);       // y = a * b
void scale(const Queue& q, const float* a, float factor, float* y, int64_t n);       // y = factor * a
void axpy(const Queue& q, float alpha, const float* x, float* y, int64_t n);         // y += alpha * x
void relu_forward(const Queue& q, const float* x, float* y, int64_t n);
void relu_backward(const Queue& q, const float* y, const float* dy, float* dx, int64_t n);     // dx = dy * (y > 0)
void sigmoid_forward(const Queue& q, const float* x, float* y, int64_t n);
void sigmoid_backward(const Queue& q, const float* y, const float* dy, float* dx, int64_t n);  // dx = dy * y * (1 - y)
// y[i] = *value and y[i] = a[i] * *scalar, the scalar in the device's memory (host memory here).
void broadcast_scalar(const Queue& q, const float* value, float* y, int64_t n);
void mul_by_scalar(const Queue& q, const float* a, const float* scalar, float* y, int64_t n);
size_t sum_workspace_bytes(const Queue& q, int64_t n);  // 0
void sum(const Queue& q, const SumArgs& a);
// The sum in double over fixed 4096-element chunks combined in order: the same result for any
// thread count. sum() stores it as float.
double sum_in_double(const float* x, int64_t n);

}  // namespace chex::kernels::cpu

#include "kernels/gpu.h"

namespace chex::kernels::CHEX_GPU_NAMESPACE {

// The CPU twins' arguments; in-place use (y == a, b or x) is allowed.
void fill(const Queue& q, float* y, int64_t n, float value);
void add(const Queue& q, const float* a, const float* b, float* y, int64_t n);  // y = a + b
void sub(const Queue& q, const float* a, const float* b, float* y, int64_t n);  // y = a - b
void mul(const Queue& q, const float* a, const float* b, float* y, int64_t n);  // y = a * b
void scale(const Queue& q, const float* a, float factor, float* y, int64_t n);  // y = factor * a
void axpy(const Queue& q, float alpha, const float* x, float* y, int64_t n);    // y += alpha * x
void relu_forward(const Queue& q, const float* x, float* y, int64_t n);
void relu_backward(const Queue& q, const float* y, const float* dy, float* dx, int64_t n);
void sigmoid_forward(const Queue& q, const float* x, float* y, int64_t n);
void sigmoid_backward(const Queue& q, const float* y, const float* dy, float* dx, int64_t n);

// The sum of x in double, written to *result (device memory), deterministically: each of a number
// of blocks fixed by n sums its strided share in double, then one block adds the partial sums in a
// fixed tree. The summation order differs from the CPU twin's (agreement to double rounding), but
// not between runs. `workspace` (device memory) holds sum_workspace_size() doubles.
constexpr int64_t sum_workspace_size() { return 1024; }
void sum_in_double(const float* x, int64_t n, double* workspace, double* result, cudaStream_t stream);
// The same sum stored as float: the table's sum (workspace: sum_workspace_size() doubles).
size_t sum_workspace_bytes(const Queue& q, int64_t n);
void sum(const Queue& q, const SumArgs& a);

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
