#include "elementwise.h"

#include <cmath>
#include <vector>

namespace chex::kernels::cpu {
namespace {
// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 15;

// ReLU on float or bf16 arrays (T), in float, rounded once on the store.
template <typename T>
void relu_forward_of(const T* x, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const float v = to_float(x[i]);
    y[i] = from_float<T>(v < 0.f ? 0.f : v);  // NaN passes, as in PyTorch
  }
}

template <typename T>
void relu_backward_of(const T* y, const T* dy, T* dx, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) dx[i] = from_float<T>(to_float(y[i]) > 0.f ? to_float(dy[i]) : 0.f);
}

}  // namespace

void fill(const Queue&, float* y, int64_t n, float value) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

void add_scalar(const Queue&, float* y, int64_t n, float value) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] += value;
}

void add(const Queue&, const float* a, const float* b, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void sub(const Queue&, const float* a, const float* b, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] - b[i];
}

void mul(const Queue&, const float* a, const float* b, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

void scale(const Queue&, const float* a, float factor, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = factor * a[i];
}

void axpy(const Queue&, float alpha, const float* x, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void relu_forward(const Queue&, const float* x, float* y, int64_t n) { relu_forward_of(x, y, n); }

void relu_backward(const Queue&, const float* y, const float* dy, float* dx, int64_t n) {
  relu_backward_of(y, dy, dx, n);
}

void relu_forward_bf16(const Queue&, const BFloat16* x, BFloat16* y, int64_t n) { relu_forward_of(x, y, n); }

void relu_backward_bf16(const Queue&, const BFloat16* y, const BFloat16* dy, BFloat16* dx, int64_t n) {
  relu_backward_of(y, dy, dx, n);
}

void sigmoid_forward(const Queue&, const float* x, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = 1.f / (1.f + std::exp(-x[i]));
}

void sigmoid_backward(const Queue&, const float* y, const float* dy, float* dx, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (1.f - y[i]);
}

double sum_in_double(const float* x, int64_t n) {
  constexpr int64_t kChunk = 4096;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t end = std::min(n, (c + 1) * kChunk);
    double s = 0.0;
    for (int64_t i = c * kChunk; i < end; ++i) s += x[i];
    partial[c] = s;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

void broadcast_scalar(const Queue&, const float* value, float* y, int64_t n) {
  const float v = *value;
  for (int64_t i = 0; i < n; ++i) y[i] = v;
}

void mul_by_scalar(const Queue&, const float* a, const float* scalar, float* y, int64_t n) {
  const float s = *scalar;
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * s;
}

size_t sum_workspace_bytes(const Queue&, int64_t /*n*/) { return 0; }

void sum(const Queue&, const SumArgs& a) { *a.result = static_cast<float>(sum_in_double(a.x, a.n)); }

}  // namespace chex::kernels::cpu
