// fp32 <-> bf16 conversions (CUDA twins of cast_cpu.cpp). One template for both directions: a
// grid-stride loop converting four elements a thread (a 16-byte float access and an 8-byte bf16
// one) where both buffers are aligned for it, then a scalar pass over the tail (or over everything
// when they are not). The batch-strided form takes one image per blockIdx.y, four elements a
// thread where every image is aligned for it, else one.
#include "kernels/cast.h"

#include "kernels/cuda_compat.h"
#include "kernels/cuda_helpers.cuh"
#include "kernels/element_type.cuh"

namespace chex::kernels::CHEX_GPU_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int kGroup = 4;             // elements a thread converts at once on the vector path
constexpr int64_t kMaxBlocks = 4096;  // a large GPU several times over; grid-stride for the rest

template <typename From, typename To>
__global__ void __launch_bounds__(kThreads) cast_vector_kernel(const From* x, To* y, int64_t groups) {
  const auto* x_groups = reinterpret_cast<const Vector<From, kGroup>*>(x);
  auto* y_groups = reinterpret_cast<Vector<To, kGroup>*>(y);
  for (int64_t g = first_index(); g < groups; g += grid_threads()) {
    const Vector<From, kGroup> in = x_groups[g];
    Vector<To, kGroup> out;
#pragma unroll
    for (int k = 0; k < kGroup; ++k) out.v[k] = from_float<To>(to_float(in.v[k]));
    y_groups[g] = out;
  }
}

template <typename From, typename To>
__global__ void __launch_bounds__(kThreads) cast_scalar_kernel(const From* x, To* y, int64_t begin, int64_t n) {
  for (int64_t i = begin + first_index(); i < n; i += grid_threads()) y[i] = from_float<To>(to_float(x[i]));
}

unsigned blocks_for(int64_t work) {
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks < kMaxBlocks ? blocks : kMaxBlocks));
}

template <typename From, typename To>
void launch_cast(const Queue& q, const From* x, To* y, int64_t n) {
  CHEX_CHECK(n >= 0, "cast: negative element count ", n);
  if (n == 0) return;
  const auto* xd = device_pointer(x);
  auto* yd = device_pointer(y);
  using FromD = DeviceElement<From>;
  using ToD = DeviceElement<To>;
  int64_t done = 0;
  if (vector_aligned<FromD, kGroup>(xd) && vector_aligned<ToD, kGroup>(yd)) {
    const int64_t groups = n / kGroup;
    if (groups > 0)
      CHEX_LAUNCH((cast_vector_kernel<FromD, ToD>), blocks_for(groups), kThreads, 0, q.stream, xd, yd, groups);
    done = groups * kGroup;
  }
  if (done < n)
    CHEX_LAUNCH((cast_scalar_kernel<FromD, ToD>), blocks_for(n - done), kThreads, 0, q.stream, xd, yd, done, n);
}

// The batch-strided form: image blockIdx.y (and every gridDim.y-th after it), a grid-stride loop
// over its groups of kGroupOf elements in x; kGroupOf 1 where the images break the alignment.
template <typename From, typename To, int kGroupOf>
__global__ void __launch_bounds__(kThreads)
    cast_images_kernel(const From* x, int64_t x_batch_stride, To* y, int64_t y_batch_stride, int64_t batch,
                       int64_t groups) {
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y) {
    const auto* x_groups = reinterpret_cast<const Vector<From, kGroupOf>*>(x + n * x_batch_stride);
    auto* y_groups = reinterpret_cast<Vector<To, kGroupOf>*>(y + n * y_batch_stride);
    for (int64_t g = first_index(); g < groups; g += grid_threads()) {
      const Vector<From, kGroupOf> in = x_groups[g];
      Vector<To, kGroupOf> out;
#pragma unroll
      for (int k = 0; k < kGroupOf; ++k) out.v[k] = from_float<To>(to_float(in.v[k]));
      y_groups[g] = out;
    }
  }
}

constexpr int64_t kMaxImageBlocks = 65535;  // gridDim.y's limit; a loop covers larger batches

template <typename From, typename To>
void launch_cast_images(const Queue& q, const From* x, int64_t x_batch_stride, To* y, int64_t y_batch_stride,
                        int64_t batch, int64_t sample) {
  CHEX_CHECK(batch >= 0 && sample >= 0, "cast of images: negative batch ", batch, " or sample size ", sample);
  if (batch == 0 || sample == 0) return;
  const auto* xd = device_pointer(x);
  auto* yd = device_pointer(y);
  using FromD = DeviceElement<From>;
  using ToD = DeviceElement<To>;
  const unsigned images = static_cast<unsigned>(batch < kMaxImageBlocks ? batch : kMaxImageBlocks);
  // Every image starts aligned when the first does and the sizes and strides are whole groups.
  const bool vectors = sample % kGroup == 0 && x_batch_stride % kGroup == 0 && y_batch_stride % kGroup == 0 &&
                       vector_aligned<FromD, kGroup>(xd) && vector_aligned<ToD, kGroup>(yd);
  if (vectors) {
    const int64_t groups = sample / kGroup;
    CHEX_LAUNCH((cast_images_kernel<FromD, ToD, kGroup>), dim3(blocks_for(groups), images), kThreads, 0, q.stream,
                xd, x_batch_stride, yd, y_batch_stride, batch, groups);
  } else {
    CHEX_LAUNCH((cast_images_kernel<FromD, ToD, 1>), dim3(blocks_for(sample), images), kThreads, 0, q.stream, xd,
                x_batch_stride, yd, y_batch_stride, batch, sample);
  }
}

}  // namespace

void cast_float_to_bf16(const Queue& q, const float* x, BFloat16* y, int64_t n) { launch_cast(q, x, y, n); }

void cast_bf16_to_float(const Queue& q, const BFloat16* x, float* y, int64_t n) { launch_cast(q, x, y, n); }

void cast_float_to_bf16_images(const Queue& q, const float* x, int64_t x_batch_stride, BFloat16* y,
                               int64_t y_batch_stride, int64_t batch, int64_t sample) {
  launch_cast_images(q, x, x_batch_stride, y, y_batch_stride, batch, sample);
}

void cast_bf16_to_float_images(const Queue& q, const BFloat16* x, int64_t x_batch_stride, float* y,
                               int64_t y_batch_stride, int64_t batch, int64_t sample) {
  launch_cast_images(q, x, x_batch_stride, y, y_batch_stride, batch, sample);
}

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
