#include "pooling.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace chex::kernels::cpu {
namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 15;

// The rows [begin, end) and columns of the input that output (oh, ow)'s window covers, padding
// excluded.
struct Window {
  int64_t row_begin, row_end, col_begin, col_end;
};

Window window_at(const Pool2dGeometry& g, int64_t oh, int64_t ow) {
  const int64_t top = oh * g.stride - g.padding;
  const int64_t left = ow * g.stride - g.padding;
  return {std::max<int64_t>(top, 0), std::min(top + g.kernel, g.height), std::max<int64_t>(left, 0),
          std::min(left + g.kernel, g.width)};
}

// Index within the plane of the window's maximum: the first in row-major order, a NaN counting as
// larger than anything. -1 for a window with no input element (impossible when padding <= kernel/2).
int64_t window_argmax(const float* plane, const Pool2dGeometry& g, const Window& w) {
  int64_t best_index = -1;
  float best = -std::numeric_limits<float>::infinity();
  for (int64_t h = w.row_begin; h < w.row_end; ++h) {
    for (int64_t col = w.col_begin; col < w.col_end; ++col) {
      const float v = plane[h * g.width + col];
      if (best_index < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
        best = v;
        best_index = h * g.width + col;
      }
    }
  }
  return best_index;
}

// The input plane (n, c) of a batch-strided x, for plane index p = n * channels + c.
const float* input_plane(const float* x, int64_t x_batch_stride, const Pool2dGeometry& g, int64_t p) {
  return x + (p / g.channels) * x_batch_stride + (p % g.channels) * g.height * g.width;
}

}  // namespace

void max_pool2d_forward(const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g) {
  const int64_t planes = g.batch * g.channels;
  const int64_t out_plane = g.out_height * g.out_width;
#pragma omp parallel for schedule(static) if (planes * out_plane * g.kernel * g.kernel > kParallelThreshold)
  for (int64_t p = 0; p < planes; ++p) {
    const float* plane = input_plane(x, x_batch_stride, g, p);
    float* yp = y + p * out_plane;
    for (int64_t oh = 0; oh < g.out_height; ++oh) {
      for (int64_t ow = 0; ow < g.out_width; ++ow) {
        const int64_t index = window_argmax(plane, g, window_at(g, oh, ow));
        yp[oh * g.out_width + ow] = index >= 0 ? plane[index] : -std::numeric_limits<float>::infinity();
      }
    }
  }
}

void max_pool2d_backward(const float* x, int64_t x_batch_stride, const float* dy, float* dx, const Pool2dGeometry& g) {
  const int64_t planes = g.batch * g.channels;
  const int64_t in_plane = g.height * g.width;
  const int64_t out_plane = g.out_height * g.out_width;
#pragma omp parallel for schedule(static) if (planes * out_plane * g.kernel * g.kernel > kParallelThreshold)
  for (int64_t p = 0; p < planes; ++p) {
    const float* plane = input_plane(x, x_batch_stride, g, p);
    const float* dyp = dy + p * out_plane;
    float* dxp = dx + p * in_plane;
    std::fill(dxp, dxp + in_plane, 0.f);
    for (int64_t oh = 0; oh < g.out_height; ++oh) {
      for (int64_t ow = 0; ow < g.out_width; ++ow) {
        const int64_t index = window_argmax(plane, g, window_at(g, oh, ow));
        if (index >= 0) dxp[index] += dyp[oh * g.out_width + ow];
      }
    }
  }
}

void avg_pool2d_forward(const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g) {
  const int64_t planes = g.batch * g.channels;
  const int64_t out_plane = g.out_height * g.out_width;
  const auto window_size = static_cast<float>(g.kernel * g.kernel);
#pragma omp parallel for schedule(static) if (planes * out_plane * g.kernel * g.kernel > kParallelThreshold)
  for (int64_t p = 0; p < planes; ++p) {
    const float* plane = input_plane(x, x_batch_stride, g, p);
    float* yp = y + p * out_plane;
    for (int64_t oh = 0; oh < g.out_height; ++oh) {
      for (int64_t ow = 0; ow < g.out_width; ++ow) {
        const Window w = window_at(g, oh, ow);
        float sum = 0.f;
        for (int64_t h = w.row_begin; h < w.row_end; ++h)
          for (int64_t col = w.col_begin; col < w.col_end; ++col) sum += plane[h * g.width + col];
        yp[oh * g.out_width + ow] = sum / window_size;
      }
    }
  }
}

void avg_pool2d_backward(const float* dy, float* dx, const Pool2dGeometry& g) {
  const int64_t planes = g.batch * g.channels;
  const int64_t in_plane = g.height * g.width;
  const int64_t out_plane = g.out_height * g.out_width;
  const auto window_size = static_cast<float>(g.kernel * g.kernel);
#pragma omp parallel for schedule(static) if (planes * out_plane * g.kernel * g.kernel > kParallelThreshold)
  for (int64_t p = 0; p < planes; ++p) {
    const float* dyp = dy + p * out_plane;
    float* dxp = dx + p * in_plane;
    std::fill(dxp, dxp + in_plane, 0.f);
    for (int64_t oh = 0; oh < g.out_height; ++oh) {
      for (int64_t ow = 0; ow < g.out_width; ++ow) {
        const Window w = window_at(g, oh, ow);
        const float share = dyp[oh * g.out_width + ow] / window_size;
        for (int64_t h = w.row_begin; h < w.row_end; ++h)
          for (int64_t col = w.col_begin; col < w.col_end; ++col) dxp[h * g.width + col] += share;
      }
    }
  }
}

void global_avg_pool_forward(const float* x, int64_t x_batch_stride, float* y, int64_t batch, int64_t channels,
                             int64_t spatial) {
  const int64_t planes = batch * channels;
#pragma omp parallel for schedule(static) if (planes * spatial > kParallelThreshold)
  for (int64_t p = 0; p < planes; ++p) {
    const float* plane = x + (p / channels) * x_batch_stride + (p % channels) * spatial;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < spatial; ++i) sum += plane[i];
    y[p] = static_cast<float>(sum / static_cast<double>(spatial));
  }
}

void global_avg_pool_backward(const float* dy, float* dx, int64_t batch, int64_t channels, int64_t spatial) {
  const int64_t planes = batch * channels;
#pragma omp parallel for schedule(static) if (planes * spatial > kParallelThreshold)
  for (int64_t p = 0; p < planes; ++p) {
    const float share = dy[p] / static_cast<float>(spatial);
    float* dxp = dx + p * spatial;
#pragma omp simd
    for (int64_t i = 0; i < spatial; ++i) dxp[i] = share;
  }
}

}  // namespace chex::kernels::cpu
