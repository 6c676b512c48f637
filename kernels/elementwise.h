#pragma once
// Elementwise kernels over contiguous float arrays. CPU twins (the reference the CUDA kernels are
// tested against); OpenMP-parallel above a size threshold, loops written to vectorise.
#include <cstdint>

#include "kernels/queue.h"

// The kernels of this family that both backends provide (engine/src/backend/backend.h). The sum
// is not among them: the CPU's returns a double, the GPU's writes device memory.
#define CHEX_ELEMENTWISE_KERNELS(X) \
  X(fill)                           \
  X(add)                            \
  X(sub)                            \
  X(mul)                            \
  X(scale)                          \
  X(axpy)                           \
  X(relu_forward)                   \
  X(relu_backward)                  \
  X(sigmoid_forward)                \
  X(sigmoid_backward)

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
// Sum in double over fixed 4096-element chunks combined in order: the same result for any
// thread count.
double sum(const float* x, int64_t n);

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
void sum(const float* x, int64_t n, double* workspace, double* result, cudaStream_t stream);

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
