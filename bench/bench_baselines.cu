// Reference kernels for bench_kernels: see bench_baselines.h.
#include "bench/bench_baselines.h"
#include "kernels/cuda_compat.h"

namespace chex::bench {
namespace {

constexpr int kThreads = 256;

__global__ void copy_vec4(const float4* src, float4* dst, int64_t n4) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n4; i += int64_t{gridDim.x} * blockDim.x)
    dst[i] = src[i];
}

__global__ void read_vec4(const float4* src, int64_t n4, float* sink) {
  float sum = 0.f;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n4; i += int64_t{gridDim.x} * blockDim.x) {
    const float4 v = src[i];
    sum += v.x + v.y + v.z + v.w;
  }
  if (sum == -1.f) *sink = sum;
}

__global__ void bce_from_p(const float* p, const float* y, const float* wp, const float* wn, int64_t batch,
                           int64_t classes, float* loss, float* dlogits) {
  CHEX_SHARED(float[kThreads], partial);
  const int64_t n = batch * classes;
  const float inv_n = 1.f / static_cast<float>(n);
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t c = i % classes;
    const float pi = p[i], yi = y[i];
    // Clamped logs, as a straightforward loss on probabilities does.
    const float log_p = logf(fmaxf(pi, 1e-12f)), log_1mp = logf(fmaxf(1.f - pi, 1e-12f));
    sum -= wp[c] * yi * log_p + wn[c] * (1.f - yi) * log_1mp;
    dlogits[i] = (wp[c] * yi * (pi - 1.f) + wn[c] * (1.f - yi) * pi) * inv_n;
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) *loss = partial[0] * inv_n;
}

}  // namespace

void copy_floats(const float* src, float* dst, int64_t n, cudaStream_t stream) {
  const int64_t n4 = n / 4;
  if (n4 == 0) return;
  const int64_t blocks = (n4 + kThreads - 1) / kThreads;
  CHEX_LAUNCH(copy_vec4, static_cast<int>(blocks < 65535 ? blocks : 65535), kThreads, 0, stream,
              reinterpret_cast<const float4*>(src), reinterpret_cast<float4*>(dst), n4);
}

void read_floats(const float* src, int64_t n, float* sink, cudaStream_t stream) {
  const int64_t n4 = n / 4;
  if (n4 == 0) return;
  const int64_t blocks = (n4 + kThreads - 1) / kThreads;
  CHEX_LAUNCH(read_vec4, static_cast<int>(blocks < 65535 ? blocks : 65535), kThreads, 0, stream,
              reinterpret_cast<const float4*>(src), n4, sink);
}

void bce_from_probabilities(const float* p, const float* targets, const float* pos_weight, const float* neg_weight,
                            int64_t batch, int64_t classes, float* loss, float* dlogits, cudaStream_t stream) {
  CHEX_LAUNCH(bce_from_p, 1, kThreads, 0, stream, p, targets, pos_weight, neg_weight, batch, classes, loss, dlogits);
}

}  // namespace chex::bench
