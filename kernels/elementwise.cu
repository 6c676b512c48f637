// Elementwise kernels (CUDA twins of elementwise_cpu.cpp): grid-stride loops, float4 loads and
// stores when the pointers are 16-byte aligned, a scalar loop otherwise.
#include "kernels/cuda_compat.h"
#include "kernels/elementwise.h"

namespace chex::kernels::CHEX_GPU_NAMESPACE {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t work) {
  // Enough blocks to fill a large GPU several times over; the grid-stride loop covers the rest.
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

__device__ __forceinline__ float relu(float v) { return v > 0.f ? v : 0.f; }

__global__ void relu_forward_vec4(const float4* x, float4* y, int64_t n4) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n4; i += int64_t{gridDim.x} * blockDim.x) {
    const float4 v = x[i];
    y[i] = make_float4(relu(v.x), relu(v.y), relu(v.z), relu(v.w));
  }
}

__global__ void relu_forward_scalar(const float* x, float* y, int64_t begin, int64_t n) {
  for (int64_t i = begin + blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    y[i] = relu(x[i]);
}

__global__ void relu_backward_scalar(const float* y, const float* dy, float* dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    dx[i] = y[i] > 0.f ? dy[i] : 0.f;
}

}  // namespace

void relu_forward(const float* x, float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  int64_t done = 0;
  if (aligned16(x) && aligned16(y)) {
    const int64_t n4 = n / 4;
    if (n4 > 0)
      CHEX_LAUNCH(relu_forward_vec4, blocks_for(n4), kThreads, 0, stream, reinterpret_cast<const float4*>(x),
                  reinterpret_cast<float4*>(y), n4);
    done = n4 * 4;
  }
  if (done < n) CHEX_LAUNCH(relu_forward_scalar, blocks_for(n - done), kThreads, 0, stream, x, y, done, n);
}

void relu_backward(const float* y, const float* dy, float* dx, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  CHEX_LAUNCH(relu_backward_scalar, blocks_for(n), kThreads, 0, stream, y, dy, dx, n);
}

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
