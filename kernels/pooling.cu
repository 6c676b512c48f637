// Max and average pooling kernels (CUDA twins of pooling_cpu.cpp).
//
// Forward: one thread per output element (grid-stride), scanning its window in row-major order
// exactly as the twin does. Backward is a gather, one thread per input element: it visits the
// windows that cover the element in the twin's order (output rows, then columns, ascending) and
// sums their contributions itself, so overlapping windows (the stem's 3x3/2 max pool) need no
// atomics and the result does not depend on the schedule. Max pool backward finds each window's
// maximum again in x (no saved indices); the windows are tiny and their reads hit the caches.
//
// Index arithmetic runs in 32 bits whenever every offset fits (64-bit division is slow on GPUs),
// and in 64 bits otherwise.
#include "kernels/pooling.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/cuda_compat.h"
#include "kernels/cuda_helpers.cuh"

namespace chex::kernels::CHEX_GPU_NAMESPACE {
namespace {

constexpr int kThreads = 256;

template <typename Index>
struct Geometry {
  Index channels, height, width, out_height, out_width, kernel, stride, padding;
  Index x_batch_stride;
};

template <typename Index>
__device__ __forceinline__ const float* input_plane(const float* x, const Geometry<Index>& g, Index p) {
  return x + (p / g.channels) * g.x_batch_stride + (p % g.channels) * (g.height * g.width);
}

// The window of output (oh, ow) clipped to the input: rows [row_begin, row_end), columns likewise.
template <typename Index>
struct Window {
  Index row_begin, row_end, col_begin, col_end;
};

template <typename Index>
__device__ __forceinline__ Window<Index> window_at(const Geometry<Index>& g, Index oh, Index ow) {
  const Index top = oh * g.stride - g.padding;
  const Index left = ow * g.stride - g.padding;
  return {max(top, Index{0}), min(top + g.kernel, g.height), max(left, Index{0}), min(left + g.kernel, g.width)};
}

// The first maximum in row-major order, NaN counting as the largest; -1 for an empty window.
template <typename Index>
__device__ __forceinline__ Index window_argmax(const float* plane, const Geometry<Index>& g, const Window<Index>& w,
                                               float& best) {
  Index best_index = -1;
  best = -INFINITY;
  for (Index h = w.row_begin; h < w.row_end; ++h) {
    for (Index col = w.col_begin; col < w.col_end; ++col) {
      const float v = plane[h * g.width + col];
      if (best_index < 0 || v > best || (isnan(v) && !isnan(best))) {
        best = v;
        best_index = h * g.width + col;
      }
    }
  }
  return best_index;
}

// The output rows [begin, end) whose windows cover input row `h` (the same for columns).
template <typename Index>
__device__ __forceinline__ void covering(Index h, Index kernel, Index stride, Index padding, Index outputs,
                                         Index& begin, Index& end) {
  const Index lowest = h + padding - kernel + 1;  // the first window start that still reaches h
  begin = lowest <= 0 ? Index{0} : (lowest + stride - 1) / stride;
  end = min(outputs, (h + padding) / stride + 1);
}

template <typename Index>
__global__ void max_pool_forward_kernel(const float* x, float* y, Geometry<Index> g, Index outputs) {
  for (Index o = first_index<Index>(); o < outputs; o += grid_threads<Index>()) {
    const Index ow = o % g.out_width;
    const Index rest = o / g.out_width;
    const Index oh = rest % g.out_height;
    const float* plane = input_plane(x, g, rest / g.out_height);
    float best;
    window_argmax(plane, g, window_at(g, oh, ow), best);
    y[o] = best;  // -inf for a window with no input element, as the twin
  }
}

template <typename Index>
__global__ void max_pool_backward_kernel(const float* x, const float* dy, float* dx, Geometry<Index> g, Index inputs) {
  for (Index i = first_index<Index>(); i < inputs; i += grid_threads<Index>()) {
    const Index w = i % g.width;
    const Index rest = i / g.width;
    const Index h = rest % g.height;
    const Index p = rest / g.height;
    const float* plane = input_plane(x, g, p);
    const float* dyp = dy + p * (g.out_height * g.out_width);
    Index oh_begin, oh_end, ow_begin, ow_end;
    covering(h, g.kernel, g.stride, g.padding, g.out_height, oh_begin, oh_end);
    covering(w, g.kernel, g.stride, g.padding, g.out_width, ow_begin, ow_end);
    const Index self = h * g.width + w;
    float sum = 0.f;
    for (Index oh = oh_begin; oh < oh_end; ++oh) {
      for (Index ow = ow_begin; ow < ow_end; ++ow) {
        float best;
        if (window_argmax(plane, g, window_at(g, oh, ow), best) == self) sum += dyp[oh * g.out_width + ow];
      }
    }
    dx[i] = sum;
  }
}

template <typename Index>
__global__ void avg_pool_forward_kernel(const float* x, float* y, Geometry<Index> g, Index outputs) {
  const auto window_size = static_cast<float>(g.kernel * g.kernel);
  for (Index o = first_index<Index>(); o < outputs; o += grid_threads<Index>()) {
    const Index ow = o % g.out_width;
    const Index rest = o / g.out_width;
    const Index oh = rest % g.out_height;
    const float* plane = input_plane(x, g, rest / g.out_height);
    const Window<Index> w = window_at(g, oh, ow);
    float sum = 0.f;
    for (Index h = w.row_begin; h < w.row_end; ++h)
      for (Index col = w.col_begin; col < w.col_end; ++col) sum += plane[h * g.width + col];
    y[o] = sum / window_size;
  }
}

template <typename Index>
__global__ void avg_pool_backward_kernel(const float* dy, float* dx, Geometry<Index> g, Index inputs) {
  const auto window_size = static_cast<float>(g.kernel * g.kernel);
  for (Index i = first_index<Index>(); i < inputs; i += grid_threads<Index>()) {
    const Index w = i % g.width;
    const Index rest = i / g.width;
    const Index h = rest % g.height;
    const float* dyp = dy + (rest / g.height) * (g.out_height * g.out_width);
    Index oh_begin, oh_end, ow_begin, ow_end;
    covering(h, g.kernel, g.stride, g.padding, g.out_height, oh_begin, oh_end);
    covering(w, g.kernel, g.stride, g.padding, g.out_width, ow_begin, ow_end);
    float sum = 0.f;
    for (Index oh = oh_begin; oh < oh_end; ++oh)
      for (Index ow = ow_begin; ow < ow_end; ++ow) sum += dyp[oh * g.out_width + ow] / window_size;
    dx[i] = sum;
  }
}

int blocks_for(int64_t work) {
  // Enough blocks to fill a large GPU several times over; the grid-stride loop covers the rest.
  return static_cast<int>(std::clamp<int64_t>((work + kThreads - 1) / kThreads, 1, 4096));
}

template <typename Index>
Geometry<Index> narrow(const Pool2dGeometry& g, int64_t x_batch_stride) {
  return {static_cast<Index>(g.channels),   static_cast<Index>(g.height),     static_cast<Index>(g.width),
          static_cast<Index>(g.out_height), static_cast<Index>(g.out_width),  static_cast<Index>(g.kernel),
          static_cast<Index>(g.stride),     static_cast<Index>(g.padding),    static_cast<Index>(x_batch_stride)};
}

// Whether every offset the kernels compute fits in 32 bits.
bool fits_int32(const Pool2dGeometry& g, int64_t x_batch_stride) {
  constexpr int64_t limit = std::numeric_limits<int32_t>::max();
  const int64_t planes = g.batch * g.channels;
  const int64_t x_extent = (g.batch - 1) * x_batch_stride + g.channels * g.height * g.width;
  // The window arithmetic adds a stride, a kernel and the padding to the largest row/column.
  const int64_t margin = g.kernel + g.stride + g.padding;
  return planes * g.height * g.width + kThreads * int64_t{4096} < limit &&
         planes * g.out_height * g.out_width + kThreads * int64_t{4096} < limit && x_extent < limit &&
         std::max(g.height, g.width) * g.stride + margin < limit;
}

// Launches kernel<int> or kernel<int64_t> over `work` elements.
#define CHEX_POOL_LAUNCH(kernel, work, stream, g, x_batch_stride, ...)                                     \
  do {                                                                                                     \
    if (fits_int32(g, x_batch_stride)) {                                                                   \
      CHEX_LAUNCH(kernel<int32_t>, blocks_for(work), kThreads, 0, stream, __VA_ARGS__,                     \
                  narrow<int32_t>(g, x_batch_stride), static_cast<int32_t>(work));                         \
    } else {                                                                                               \
      CHEX_LAUNCH(kernel<int64_t>, blocks_for(work), kThreads, 0, stream, __VA_ARGS__,                     \
                  narrow<int64_t>(g, x_batch_stride), static_cast<int64_t>(work));                         \
    }                                                                                                      \
  } while (false)

int64_t input_count(const Pool2dGeometry& g) { return g.batch * g.channels * g.height * g.width; }
int64_t output_count(const Pool2dGeometry& g) { return g.batch * g.channels * g.out_height * g.out_width; }

}  // namespace

void max_pool2d_forward(const Queue& q, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g) {
  const int64_t outputs = output_count(g);
  if (outputs <= 0) return;
  CHEX_POOL_LAUNCH(max_pool_forward_kernel, outputs, q.stream, g, x_batch_stride, x, y);
}

void max_pool2d_backward(const Queue& q, const float* x, int64_t x_batch_stride, const float* dy, float* dx,
                         const Pool2dGeometry& g) {
  const int64_t inputs = input_count(g);
  if (inputs <= 0) return;
  CHEX_POOL_LAUNCH(max_pool_backward_kernel, inputs, q.stream, g, x_batch_stride, x, dy, dx);
}

void avg_pool2d_forward(const Queue& q, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g) {
  const int64_t outputs = output_count(g);
  if (outputs <= 0) return;
  CHEX_POOL_LAUNCH(avg_pool_forward_kernel, outputs, q.stream, g, x_batch_stride, x, y);
}

void avg_pool2d_backward(const Queue& q, const float* dy, float* dx, const Pool2dGeometry& g) {
  const int64_t inputs = input_count(g);
  if (inputs <= 0) return;
  // dx and dy are contiguous: the batch stride of dx stands in for x's.
  CHEX_POOL_LAUNCH(avg_pool_backward_kernel, inputs, q.stream, g, g.channels * g.height * g.width, dy, dx);
}

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
