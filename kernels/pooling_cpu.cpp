#include "pooling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

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

// Whether v replaces the best so far in a scan in row-major order: a larger value, or the first NaN.
// Bitwise operators, not || and &&: no branches, so that the loops below vectorise.
inline bool replaces(float v, float best) { return (v > best) | ((v != v) & (best == best)); }

// The maxima (and their indices in the plane) of one output row's windows, by the rule of
// pooling.h (the first maximum in row-major order, a NaN counting as larger than anything),
// computed row by row of the window: each input row's maxima over the window's columns
// (vectorised where the window lies inside the plane), then combined from the top row down, a
// later row winning only by replaces(). That finds the same element as the row-major scan (the
// first row holding the maximum or a NaN, and the first such column in it): the same values, ties
// and NaNs. Without kIndices (the forward, which needs no indices) only the values: the forward of
// DenseNet's stem pooling took 4% of a 128-px inference with them.
template <bool kIndices>
class RowMaxima {
  const Pool2dGeometry& g_;

 public:
  explicit RowMaxima(const Pool2dGeometry& g)
      : g_(g), value(static_cast<size_t>(g.out_width)), index(kIndices ? static_cast<size_t>(g.out_width) : 0),
        row_value_(static_cast<size_t>(g.out_width)), start_value_(static_cast<size_t>(g.width)),
        row_index_(kIndices ? static_cast<size_t>(g.out_width) : 0),
        start_index_(kIndices ? static_cast<size_t>(g.width) : 0) {
    // Output columns whose window lies inside the plane's columns.
    interior_begin_ = std::min(g.out_width, (g.padding + g.stride - 1) / g.stride);
    interior_end_ = g.width >= g.kernel - g.padding ? (g.width - g.kernel + g.padding) / g.stride + 1 : 0;
    interior_end_ = std::max(interior_begin_, std::min(interior_end_, g.out_width));
  }

  // Fills value (and index) for output row oh (-inf and index -1 for a window with no element).
  void compute(const float* plane, int64_t oh) {
    const int64_t top = oh * g_.stride - g_.padding;
    const int64_t row_begin = std::max<int64_t>(top, 0), row_end = std::min(top + g_.kernel, g_.height);
    if (row_begin >= row_end) {
      std::fill(value.begin(), value.end(), -std::numeric_limits<float>::infinity());
      std::fill(index.begin(), index.end(), -1);
      return;
    }
    row_maxima(plane, row_begin, value.data(), index.data());
    for (int64_t h = row_begin + 1; h < row_end; ++h) {
      row_maxima(plane, h, row_value_.data(), row_index_.data());
      float* v = value.data();
      int32_t* i = index.data();
      const float* rv = row_value_.data();
      const int32_t* ri = row_index_.data();
#pragma omp simd
      for (int64_t ow = 0; ow < g_.out_width; ++ow) {
        const bool take = replaces(rv[ow], v[ow]);
        v[ow] = take ? rv[ow] : v[ow];
        if constexpr (kIndices) i[ow] = take ? ri[ow] : i[ow];
      }
    }
  }

  std::vector<float> value;
  std::vector<int32_t> index;  // within the plane, which has fewer than 2^31 elements; empty without kIndices

 private:
  // Input row h's maxima over each output column's window columns.
  void row_maxima(const float* plane, int64_t h, float* v, int32_t* idx) {
    const float* row = plane + h * g_.width;
    const auto row_offset = static_cast<int32_t>(h * g_.width);
    auto clipped = [&](int64_t ow) {  // a window that the plane's left or right edge cuts
      const int64_t left = ow * g_.stride - g_.padding;
      const int64_t begin = std::max<int64_t>(left, 0), end = std::min(left + g_.kernel, g_.width);
      float best = -std::numeric_limits<float>::infinity();
      int32_t best_index = -1;
      for (int64_t col = begin; col < end; ++col)
        if (best_index < 0 || replaces(row[col], best)) {
          best = row[col];
          best_index = row_offset + static_cast<int32_t>(col);
        }
      v[ow] = best;
      if constexpr (kIndices) idx[ow] = best_index;
    };
    for (int64_t ow = 0; ow < interior_begin_; ++ow) clipped(ow);
    switch (g_.kernel) {  // a constant kernel size unrolls the window, which GCC then vectorises
      case 2:
        interior_maxima<2>(row, row_offset, v, idx);
        break;
      case 3:
        interior_maxima<3>(row, row_offset, v, idx);
        break;
      default:
        for (int64_t ow = interior_begin_; ow < interior_end_; ++ow) clipped(ow);
    }
    for (int64_t ow = interior_end_; ow < g_.out_width; ++ow) clipped(ow);
  }

  // The interior windows at a constant kernel size: first each window start's maximum over kKernel
  // contiguous columns, for every start, then every stride-th of them. Written as a maximum and
  // then the first element equal to it (or the first NaN), which GCC 12 vectorises; the scan with
  // replaces() chained through a running best it does not.
  template <int64_t kKernel>
  void interior_maxima(const float* row, int32_t row_offset, float* v, int32_t* idx) {
    static_assert(kKernel == 2 || kKernel == 3);
    const int64_t first = interior_begin_ * g_.stride - g_.padding;
    const int64_t starts = (interior_end_ - 1 - interior_begin_) * g_.stride + 1;
    const float* r = row + first;
    float* sv = start_value_.data();
    int32_t* si = start_index_.data();
    // std::max keeps the first of equal values, so `largest` is the first maximum itself (bitwise,
    // signed zeros included), and the value is that or the first NaN.
#pragma omp simd
    for (int64_t w = 0; w < starts; ++w) {
      const float a = r[w], b = r[w + 1], c = kKernel == 3 ? r[w + 2] : r[w + 1];
      const float largest = std::max(std::max(a, b), c);
      sv[w] = a != a ? a : (b != b ? b : (c != c ? c : largest));
      if constexpr (kIndices) {
        const int32_t k_largest = a == largest ? 0 : (b == largest ? 1 : 2);
        si[w] = a != a ? 0 : (b != b ? 1 : (c != c ? 2 : k_largest));
      }
    }
    for (int64_t ow = interior_begin_; ow < interior_end_; ++ow) {
      const int64_t w = (ow - interior_begin_) * g_.stride;
      v[ow] = sv[w];
      if constexpr (kIndices) idx[ow] = row_offset + static_cast<int32_t>(first + w) + si[w];
    }
  }


  std::vector<float> row_value_, start_value_;
  std::vector<int32_t> row_index_, start_index_;
  int64_t interior_begin_ = 0, interior_end_ = 0;
};

// The input plane (n, c) of a batch-strided x, for plane index p = n * channels + c.
template <typename T>
const T* input_plane(const T* x, int64_t x_batch_stride, const Pool2dGeometry& g, int64_t p) {
  return x + (p / g.channels) * x_batch_stride + (p % g.channels) * g.height * g.width;
}

// The twins are written once for float and bf16 (pooling.h): they compute on float planes. A float
// plane is used in place; a bf16 one is widened (exactly) into `scratch` first.
template <typename T>
const float* widened(const T* plane, int64_t size, std::vector<float>& scratch) {
  if constexpr (std::is_same_v<T, float>) {
    return plane;
  } else {
    scratch.resize(static_cast<size_t>(size));
    for (int64_t i = 0; i < size; ++i) scratch[static_cast<size_t>(i)] = to_float(plane[i]);
    return scratch.data();
  }
}

// Where a backward accumulates a plane of dx in float: dx itself for float, `scratch` for bf16 (a
// bf16 dx would round every addition); store_accumulated then rounds it into dx once.
template <typename T>
float* accumulator(T* dx_plane, int64_t size, std::vector<float>& scratch) {
  if constexpr (std::is_same_v<T, float>) {
    return dx_plane;
  } else {
    scratch.resize(static_cast<size_t>(size));
    return scratch.data();
  }
}

template <typename T>
void store_accumulated(const float* sums, T* dx_plane, int64_t size) {
  if constexpr (!std::is_same_v<T, float>)
    for (int64_t i = 0; i < size; ++i) dx_plane[i] = from_float<T>(sums[i]);
}

template <typename T>
void max_forward(const T* x, int64_t x_batch_stride, T* y, const Pool2dGeometry& g) {
  const int64_t planes = g.batch * g.channels;
  const int64_t out_plane = g.out_height * g.out_width;
#pragma omp parallel if (planes * out_plane * g.kernel * g.kernel > kParallelThreshold)
  {
    RowMaxima<false> best(g);
    std::vector<float> scratch;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const float* plane = widened(input_plane(x, x_batch_stride, g, p), g.height * g.width, scratch);
      T* yp = y + p * out_plane;
      for (int64_t oh = 0; oh < g.out_height; ++oh) {
        best.compute(plane, oh);
        T* y_row = yp + oh * g.out_width;
        for (int64_t ow = 0; ow < g.out_width; ++ow) y_row[ow] = from_float<T>(best.value[static_cast<size_t>(ow)]);
      }
    }
  }
}

template <typename T>
void max_backward(const T* x, int64_t x_batch_stride, const T* dy, T* dx, const Pool2dGeometry& g) {
  const int64_t planes = g.batch * g.channels;
  const int64_t in_plane = g.height * g.width;
  const int64_t out_plane = g.out_height * g.out_width;
#pragma omp parallel if (planes * out_plane * g.kernel * g.kernel > kParallelThreshold)
  {
    RowMaxima<true> best(g);
    std::vector<float> x_scratch, dx_scratch;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const float* plane = widened(input_plane(x, x_batch_stride, g, p), in_plane, x_scratch);
      const T* dyp = dy + p * out_plane;
      float* sums = accumulator(dx + p * in_plane, in_plane, dx_scratch);
      std::fill(sums, sums + in_plane, 0.f);
      for (int64_t oh = 0; oh < g.out_height; ++oh) {
        best.compute(plane, oh);
        const T* dy_row = dyp + oh * g.out_width;
        for (int64_t ow = 0; ow < g.out_width; ++ow) {  // in (oh, ow) order, as ever: the same sums
          const int32_t at = best.index[static_cast<size_t>(ow)];
          if (at >= 0) sums[at] += to_float(dy_row[ow]);
        }
      }
      store_accumulated(sums, dx + p * in_plane, in_plane);
    }
  }
}

template <typename T>
void avg_forward(const T* x, int64_t x_batch_stride, T* y, const Pool2dGeometry& g) {
  const int64_t planes = g.batch * g.channels;
  const int64_t out_plane = g.out_height * g.out_width;
  const auto window_size = static_cast<float>(g.kernel * g.kernel);
#pragma omp parallel for schedule(static) if (planes * out_plane * g.kernel * g.kernel > kParallelThreshold)
  for (int64_t p = 0; p < planes; ++p) {
    const T* plane = input_plane(x, x_batch_stride, g, p);
    T* yp = y + p * out_plane;
    for (int64_t oh = 0; oh < g.out_height; ++oh) {
      for (int64_t ow = 0; ow < g.out_width; ++ow) {
        const Window w = window_at(g, oh, ow);
        float sum = 0.f;
        for (int64_t h = w.row_begin; h < w.row_end; ++h)
          for (int64_t col = w.col_begin; col < w.col_end; ++col) sum += to_float(plane[h * g.width + col]);
        yp[oh * g.out_width + ow] = from_float<T>(sum / window_size);
      }
    }
  }
}

template <typename T>
void avg_backward(const T* dy, T* dx, const Pool2dGeometry& g) {
  const int64_t planes = g.batch * g.channels;
  const int64_t in_plane = g.height * g.width;
  const int64_t out_plane = g.out_height * g.out_width;
  const auto window_size = static_cast<float>(g.kernel * g.kernel);
#pragma omp parallel if (planes * out_plane * g.kernel * g.kernel > kParallelThreshold)
  {
    std::vector<float> scratch;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const T* dyp = dy + p * out_plane;
      float* sums = accumulator(dx + p * in_plane, in_plane, scratch);
      std::fill(sums, sums + in_plane, 0.f);
      for (int64_t oh = 0; oh < g.out_height; ++oh) {
        for (int64_t ow = 0; ow < g.out_width; ++ow) {
          const Window w = window_at(g, oh, ow);
          const float share = to_float(dyp[oh * g.out_width + ow]) / window_size;
          for (int64_t h = w.row_begin; h < w.row_end; ++h)
            for (int64_t col = w.col_begin; col < w.col_end; ++col) sums[h * g.width + col] += share;
        }
      }
      store_accumulated(sums, dx + p * in_plane, in_plane);
    }
  }
}

}  // namespace

void max_pool2d_forward(const Queue&, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g) {
  max_forward(x, x_batch_stride, y, g);
}

void max_pool2d_backward(const Queue&, const float* x, int64_t x_batch_stride, const float* dy, float* dx,
                         const Pool2dGeometry& g) {
  max_backward(x, x_batch_stride, dy, dx, g);
}

void avg_pool2d_forward(const Queue&, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g) {
  avg_forward(x, x_batch_stride, y, g);
}

void avg_pool2d_backward(const Queue&, const float* dy, float* dx, const Pool2dGeometry& g) { avg_backward(dy, dx, g); }

void max_pool2d_forward_bf16(const Queue&, const BFloat16* x, int64_t x_batch_stride, BFloat16* y,
                             const Pool2dGeometry& g) {
  max_forward(x, x_batch_stride, y, g);
}

void max_pool2d_backward_bf16(const Queue&, const BFloat16* x, int64_t x_batch_stride, const BFloat16* dy,
                              BFloat16* dx, const Pool2dGeometry& g) {
  max_backward(x, x_batch_stride, dy, dx, g);
}

void avg_pool2d_forward_bf16(const Queue&, const BFloat16* x, int64_t x_batch_stride, BFloat16* y,
                             const Pool2dGeometry& g) {
  avg_forward(x, x_batch_stride, y, g);
}

void avg_pool2d_backward_bf16(const Queue&, const BFloat16* dy, BFloat16* dx, const Pool2dGeometry& g) {
  avg_backward(dy, dx, g);
}

void global_avg_pool_backward(const Queue&, const float* dy, float* dx, int64_t batch, int64_t channels,
                              int64_t spatial) {
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
