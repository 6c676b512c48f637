// Global average pooling (CUDA twins of global_avg_pool_{forward,backward} and
// global_avg_pool_forward_bf16 in global_pool_cpu.cpp and pooling_cpu.cpp).
// Forward, on float32 or bf16 input (one template) into float32: one warp per (image, channel)
// plane, grid-stride over planes, each value widened to float and summed in double in a fixed
// order (lanes, then a shuffle tree), with 16-byte loads (four floats, eight bf16) when the planes
// keep 16-byte alignment.
// Backward: a grid-stride fill of each plane with its share of the gradient, float4 stores when dx
// is aligned.
#include <cstdint>

#include "kernels/cuda_compat.h"
#include "kernels/cuda_helpers.cuh"
#include "kernels/element_type.cuh"
#include "kernels/global_pool.h"
#include "kernels/pooling.h"

namespace chex::kernels::CHEX_GPU_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int64_t kMaxBlocks = 4096;  // a large GPU several times over; grid-stride for the rest

// D: the device element type of x (float or __nv_bfloat16).
template <typename D, bool kVector>
__global__ void __launch_bounds__(kThreads)
    global_avg_pool_forward_kernel(const D* x, int64_t x_stride, float* y, int64_t planes, int64_t channels,
                                   int64_t spatial) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  for (int64_t p = blockIdx.x * int64_t{kWarps} + threadIdx.x / 32; p < planes; p += int64_t{gridDim.x} * kWarps) {
    const int64_t n = p / channels, c = p - n * channels;
    const D* plane = x + n * x_stride + c * spatial;
    double sum = 0.0;
    if constexpr (kVector) {
      const auto* plane_vectors = reinterpret_cast<const Vector<D>*>(plane);
      for (int64_t i = lane; i < spatial / Vector<D>::kSize; i += 32) {
        const Vector<D> v = plane_vectors[i];
#pragma unroll
        for (int k = 0; k < Vector<D>::kSize; ++k) sum += to_float(v.v[k]);
      }
    } else {
      for (int64_t i = lane; i < spatial; i += 32) sum += to_float(plane[i]);
    }
    sum = warp_sum(sum);
    if (lane == 0) y[p] = static_cast<float>(sum / static_cast<double>(spatial));
  }
}

// dx[p, i] = dy[p] / spatial over float4 groups of the flat [planes * spatial] array (a group may
// straddle planes when spatial is not a multiple of 4).
__global__ void __launch_bounds__(kThreads)
    global_avg_pool_backward_vec4(const float* dy, float4* dx, int64_t groups, int64_t spatial) {
  const float divisor = static_cast<float>(spatial);
  for (int64_t g = blockIdx.x * int64_t{kThreads} + threadIdx.x; g < groups; g += int64_t{gridDim.x} * kThreads) {
    int64_t p = g * 4 / spatial, i = g * 4 - p * spatial;
    float v[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      while (i >= spatial) {  // at most a few steps, only when spatial < 4
        i -= spatial;
        ++p;
      }
      v[k] = dy[p] / divisor;
      ++i;
    }
    dx[g] = make_float4(v[0], v[1], v[2], v[3]);
  }
}

__global__ void __launch_bounds__(kThreads)
    global_avg_pool_backward_scalar(const float* dy, float* dx, int64_t begin, int64_t total, int64_t spatial) {
  const float divisor = static_cast<float>(spatial);
  for (int64_t j = begin + blockIdx.x * int64_t{kThreads} + threadIdx.x; j < total; j += int64_t{gridDim.x} * kThreads)
    dx[j] = dy[j / spatial] / divisor;
}

unsigned blocks_for(int64_t work, int64_t per_block) {
  const int64_t blocks = (work + per_block - 1) / per_block;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks < kMaxBlocks ? blocks : kMaxBlocks));
}

template <typename T>
void launch_forward(const Queue& q, const T* x, int64_t x_batch_stride, float* y, int64_t batch, int64_t channels,
                    int64_t spatial) {
  CHEX_CHECK(batch >= 0 && channels >= 0 && spatial >= 0, "global average pool: negative size");
  const int64_t planes = batch * channels;
  if (planes == 0) return;
  CHEX_CHECK(spatial >= 1, "global average pool of empty planes");
  using D = DeviceElement<T>;
  const D* xd = device_pointer(x);
  const unsigned grid = blocks_for(planes, kWarps);
  constexpr int64_t kPerVector = Vector<D>::kSize;
  if (spatial % kPerVector == 0 && x_batch_stride % kPerVector == 0 && vector_aligned<D>(xd))
    CHEX_LAUNCH((global_avg_pool_forward_kernel<D, true>), grid, kThreads, 0, q.stream, xd, x_batch_stride, y, planes,
                channels, spatial);
  else
    CHEX_LAUNCH((global_avg_pool_forward_kernel<D, false>), grid, kThreads, 0, q.stream, xd, x_batch_stride, y,
                planes, channels, spatial);
}

}  // namespace

void global_avg_pool_forward(const Queue& q, const float* x, int64_t x_batch_stride, float* y, int64_t batch,
                             int64_t channels, int64_t spatial) {
  launch_forward(q, x, x_batch_stride, y, batch, channels, spatial);
}

void global_avg_pool_forward_bf16(const Queue& q, const BFloat16* x, int64_t x_batch_stride, float* y, int64_t batch,
                                  int64_t channels, int64_t spatial) {
  launch_forward(q, x, x_batch_stride, y, batch, channels, spatial);
}

void global_avg_pool_backward(const Queue& q, const float* dy, float* dx, int64_t batch, int64_t channels,
                              int64_t spatial) {
  CHEX_CHECK(batch >= 0 && channels >= 0 && spatial >= 0, "global average pool: negative size");
  const int64_t total = batch * channels * spatial;
  if (total == 0) return;
  int64_t done = 0;
  if (aligned16(dx)) {
    const int64_t groups = total / 4;
    if (groups > 0)
      CHEX_LAUNCH(global_avg_pool_backward_vec4, blocks_for(groups, kThreads), kThreads, 0, q.stream, dy,
                  reinterpret_cast<float4*>(dx), groups, spatial);
    done = groups * 4;
  }
  if (done < total)
    CHEX_LAUNCH(global_avg_pool_backward_scalar, blocks_for(total - done, kThreads), kThreads, 0, q.stream, dy, dx, done,
                total, spatial);
}

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
