// Max and average pooling kernels (CUDA twins of pooling_cpu.cpp), each written once for float32
// and bf16 activations (D, the device element type: float or __nv_bfloat16): values are widened to
// float, compared and summed in float, and a result is rounded once, on its store
// (kernels/element_type.cuh).
//
// Forward: one thread per output element (grid-stride), scanning its window in row-major order
// exactly as the twin does.
//
// Backward, without atomics and in the twin's order of additions (so bit for bit its result, for
// any schedule); each launch writes every element of dx exactly once:
//  - the non-overlapping average pool (kernel == stride, no padding: DenseNet's 2x2/2 transitions):
//    one thread per output gradient, writing its share to the kernel x kernel inputs of its window
//    (for 2x2, when rows allow, one store per window row: two floats, or two bf16), and the threads
//    of the last row and column of windows zeroing the inputs no window covers (H or W not a
//    multiple of the kernel);
//  - the max pool with stride 2 and a kernel of at most 3 (the stem's 3x3/2, padding 1): one
//    thread per 2x2 tile of inputs. Such a tile lies under at most 2 x 2 windows; the thread finds
//    their maxima again in x once each (no saved indices), then sums for each of its four inputs
//    the gradients of the windows whose maximum it is, and stores the tile as two pair rows;
//  - every other shape: a gather, one thread per input element, visiting the windows that cover it
//    (output rows, then columns, ascending) and finding each one's maximum again.
// The first two index with 32-bit integers and divide by constants fixed at launch as a multiply
// and a shift (FastDivider); the gather's index arithmetic runs in 32 bits whenever every offset
// fits (64-bit division is slow on GPUs), and in 64 bits otherwise; the fast paths fall back to it
// when an offset does not fit in 32 bits.
#include "kernels/pooling.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/cuda_compat.h"
#include "kernels/cuda_helpers.cuh"
#include "kernels/element_type.cuh"

namespace chex::kernels::CHEX_GPU_NAMESPACE {
namespace {

constexpr int kThreads = 256;

template <typename Index>
struct Geometry {
  Index channels, height, width, out_height, out_width, kernel, stride, padding;
  Index x_batch_stride;
};

template <typename D, typename Index>
__device__ __forceinline__ const D* input_plane(const D* x, const Geometry<Index>& g, Index p) {
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
template <typename D, typename Index>
__device__ __forceinline__ Index window_argmax(const D* plane, const Geometry<Index>& g, const Window<Index>& w,
                                               float& best) {
  Index best_index = -1;
  best = -INFINITY;
  for (Index h = w.row_begin; h < w.row_end; ++h) {
    for (Index col = w.col_begin; col < w.col_end; ++col) {
      const float v = to_float(plane[h * g.width + col]);
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

template <typename D, typename Index>
__global__ void max_pool_forward_kernel(const D* x, D* y, Geometry<Index> g, Index outputs) {
  for (Index o = first_index<Index>(); o < outputs; o += grid_threads<Index>()) {
    const Index ow = o % g.out_width;
    const Index rest = o / g.out_width;
    const Index oh = rest % g.out_height;
    const D* plane = input_plane(x, g, rest / g.out_height);
    float best;
    window_argmax(plane, g, window_at(g, oh, ow), best);
    y[o] = from_float<D>(best);  // -inf for a window with no input element, as the twin
  }
}

template <typename D, typename Index>
__global__ void max_pool_backward_kernel(const D* x, const D* dy, D* dx, Geometry<Index> g, Index inputs) {
  for (Index i = first_index<Index>(); i < inputs; i += grid_threads<Index>()) {
    const Index w = i % g.width;
    const Index rest = i / g.width;
    const Index h = rest % g.height;
    const Index p = rest / g.height;
    const D* plane = input_plane(x, g, p);
    const D* dyp = dy + p * (g.out_height * g.out_width);
    Index oh_begin, oh_end, ow_begin, ow_end;
    covering(h, g.kernel, g.stride, g.padding, g.out_height, oh_begin, oh_end);
    covering(w, g.kernel, g.stride, g.padding, g.out_width, ow_begin, ow_end);
    const Index self = h * g.width + w;
    float sum = 0.f;
    for (Index oh = oh_begin; oh < oh_end; ++oh) {
      for (Index ow = ow_begin; ow < ow_end; ++ow) {
        float best;
        if (window_argmax(plane, g, window_at(g, oh, ow), best) == self) sum += to_float(dyp[oh * g.out_width + ow]);
      }
    }
    dx[i] = from_float<D>(sum);
  }
}

template <typename D, typename Index>
__global__ void avg_pool_forward_kernel(const D* x, D* y, Geometry<Index> g, Index outputs) {
  const auto window_size = static_cast<float>(g.kernel * g.kernel);
  for (Index o = first_index<Index>(); o < outputs; o += grid_threads<Index>()) {
    const Index ow = o % g.out_width;
    const Index rest = o / g.out_width;
    const Index oh = rest % g.out_height;
    const D* plane = input_plane(x, g, rest / g.out_height);
    const Window<Index> w = window_at(g, oh, ow);
    float sum = 0.f;
    for (Index h = w.row_begin; h < w.row_end; ++h)
      for (Index col = w.col_begin; col < w.col_end; ++col) sum += to_float(plane[h * g.width + col]);
    y[o] = from_float<D>(sum / window_size);
  }
}

template <typename D, typename Index>
__global__ void avg_pool_backward_kernel(const D* dy, D* dx, Geometry<Index> g, Index inputs) {
  const auto window_size = static_cast<float>(g.kernel * g.kernel);
  for (Index i = first_index<Index>(); i < inputs; i += grid_threads<Index>()) {
    const Index w = i % g.width;
    const Index rest = i / g.width;
    const Index h = rest % g.height;
    const D* dyp = dy + (rest / g.height) * (g.out_height * g.out_width);
    Index oh_begin, oh_end, ow_begin, ow_end;
    covering(h, g.kernel, g.stride, g.padding, g.out_height, oh_begin, oh_end);
    covering(w, g.kernel, g.stride, g.padding, g.out_width, ow_begin, ow_end);
    float sum = 0.f;
    for (Index oh = oh_begin; oh < oh_end; ++oh)
      for (Index ow = ow_begin; ow < ow_end; ++ow) sum += to_float(dyp[oh * g.out_width + ow]) / window_size;
    dx[i] = from_float<D>(sum);
  }
}

// ---- Backward fast paths (32-bit indices, FastDivider for the index decomposition).

// A plane's geometry for the fast paths, everything in int32.
struct TileGeometry {
  int32_t channels, height, width, out_height, out_width, kernel, stride, padding, x_batch_stride;
  FastDivider by_channels, by_out_width, by_out_height, by_tiles_width, by_tiles_height;
};

// Two adjacent elements of a row stored at once (8 bytes of float, 4 of bf16), rounded once each.
template <typename D>
__device__ __forceinline__ void store_pair(D* to, float first, float second) {
  *reinterpret_cast<Vector<D, 2>*>(to) = Vector<D, 2>{{from_float<D>(first), from_float<D>(second)}};
}

// The non-overlapping average pool (kernel == stride, padding 0): output o's share goes to its
// window; kPairs (kernel 2, even width, dx aligned to a pair) stores each window row as one pair.
template <typename D, bool kPairs>
__global__ void avg_pool_backward_windows_kernel(const D* dy, D* dx, TileGeometry g, int32_t outputs) {
  const auto window_size = static_cast<float>(g.kernel * g.kernel);
  const int32_t k = g.kernel, covered_rows = g.out_height * k, covered_cols = g.out_width * k;
  for (int32_t o = first_index<int32_t>(); o < outputs; o += grid_threads<int32_t>()) {
    int32_t rest, ow, p, oh;
    g.by_out_width.divmod(o, rest, ow);
    g.by_out_height.divmod(rest, p, oh);
    // 0 + share, as the twin's zero-filled dx += share (a -0 share gives +0 there too).
    const float share = 0.f + to_float(dy[o]) / window_size;
    const D stored = from_float<D>(share), zero = from_float<D>(0.f);
    D* plane = dx + p * (g.height * g.width);
    const int32_t h0 = oh * k, w0 = ow * k;
    if constexpr (kPairs) {
      store_pair(plane + h0 * g.width + w0, share, share);
      store_pair(plane + (h0 + 1) * g.width + w0, share, share);
    } else {
      for (int32_t h = h0; h < h0 + k; ++h)
        for (int32_t w = w0; w < w0 + k; ++w) plane[h * g.width + w] = stored;
    }
    // Inputs past the last window's row or column get 0 from the edge windows' threads.
    const bool last_col = ow == g.out_width - 1, last_row = oh == g.out_height - 1;
    if (last_col)
      for (int32_t h = h0; h < h0 + k; ++h)
        for (int32_t w = covered_cols; w < g.width; ++w) plane[h * g.width + w] = zero;
    if (last_row)
      for (int32_t h = covered_rows; h < g.height; ++h)
        for (int32_t w = w0; w < (last_col ? g.width : w0 + k); ++w) plane[h * g.width + w] = zero;
  }
}

// Max pool backward with stride 2 and kernel <= 3: thread t owns the 2x2 tile of inputs at rows
// 2*th, 2*th + 1 and columns 2*tw, 2*tw + 1 (clipped to the plane). The windows covering rows h0
// and h0 + 1 start at rows 2*oh - padding in [h0 - kernel + 1, h0 + 1]: a span of kernel + 1 <= 4
// rows holds at most two starts 2 apart, so at most two window rows (and two window columns).
// kPairs (even width, dx aligned to a pair): full tiles store two pair rows.
template <typename D, bool kPairs>
__global__ void max_pool_backward_tiles_kernel(const D* x, const D* dy, D* dx, TileGeometry g, int32_t tiles) {
  Geometry<int32_t> window_geometry{g.channels,   g.height, g.width,   g.out_height,     g.out_width,
                                    g.kernel,     g.stride, g.padding, g.x_batch_stride};
  for (int32_t t = first_index<int32_t>(); t < tiles; t += grid_threads<int32_t>()) {
    int32_t rest, tw, p, th, n, c;
    g.by_tiles_width.divmod(t, rest, tw);
    g.by_tiles_height.divmod(rest, p, th);
    g.by_channels.divmod(p, n, c);
    const D* plane = x + n * g.x_batch_stride + c * (g.height * g.width);
    const D* dyp = dy + p * (g.out_height * g.out_width);
    const int32_t h0 = 2 * th, w0 = 2 * tw;
    const int32_t rows = min(2, g.height - h0), cols = min(2, g.width - w0);
    int32_t oh_begin, oh_end, ow_begin, ow_end, unused;
    covering(h0, g.kernel, g.stride, g.padding, g.out_height, oh_begin, unused);
    covering(h0 + rows - 1, g.kernel, g.stride, g.padding, g.out_height, unused, oh_end);
    covering(w0, g.kernel, g.stride, g.padding, g.out_width, ow_begin, unused);
    covering(w0 + cols - 1, g.kernel, g.stride, g.padding, g.out_width, unused, ow_end);
    // Each covering window's maximum (its index in the plane) and gradient, in (oh, ow) order.
    int32_t best_index[2][2] = {{-1, -1}, {-1, -1}};
    float grad[2][2] = {{0.f, 0.f}, {0.f, 0.f}};
    for (int32_t a = 0; a < 2; ++a) {
      for (int32_t b = 0; b < 2; ++b) {
        const int32_t oh = oh_begin + a, ow = ow_begin + b;
        if (oh >= oh_end || ow >= ow_end) continue;
        float best;
        best_index[a][b] = window_argmax(plane, window_geometry, window_at(window_geometry, oh, ow), best);
        grad[a][b] = to_float(dyp[oh * g.out_width + ow]);
      }
    }
    float sums[2][2];
    for (int32_t r = 0; r < 2; ++r) {
      for (int32_t col = 0; col < 2; ++col) {
        const int32_t self = (h0 + r) * g.width + w0 + col;
        float sum = 0.f;
        for (int32_t a = 0; a < 2; ++a)
          for (int32_t b = 0; b < 2; ++b)
            if (best_index[a][b] == self) sum += grad[a][b];
        sums[r][col] = sum;
      }
    }
    D* dxp = dx + p * (g.height * g.width);
    if (kPairs && rows == 2 && cols == 2) {
      store_pair(dxp + h0 * g.width + w0, sums[0][0], sums[0][1]);
      store_pair(dxp + (h0 + 1) * g.width + w0, sums[1][0], sums[1][1]);
    } else {
      for (int32_t r = 0; r < rows; ++r)
        for (int32_t col = 0; col < cols; ++col) dxp[(h0 + r) * g.width + w0 + col] = from_float<D>(sums[r][col]);
    }
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

// Launches kernel<D, int> or kernel<D, int64_t> over `work` elements (D: the device element type).
#define CHEX_POOL_LAUNCH(kernel, D, work, stream, g, x_batch_stride, ...)                                  \
  do {                                                                                                     \
    if (fits_int32(g, x_batch_stride)) {                                                                   \
      CHEX_LAUNCH((kernel<D, int32_t>), blocks_for(work), kThreads, 0, stream, __VA_ARGS__,                \
                  narrow<int32_t>(g, x_batch_stride), static_cast<int32_t>(work));                         \
    } else {                                                                                               \
      CHEX_LAUNCH((kernel<D, int64_t>), blocks_for(work), kThreads, 0, stream, __VA_ARGS__,                \
                  narrow<int64_t>(g, x_batch_stride), static_cast<int64_t>(work));                         \
    }                                                                                                      \
  } while (false)

int64_t input_count(const Pool2dGeometry& g) { return g.batch * g.channels * g.height * g.width; }
int64_t output_count(const Pool2dGeometry& g) { return g.batch * g.channels * g.out_height * g.out_width; }


int32_t tiles_along(int64_t size) { return static_cast<int32_t>((size + 1) / 2); }

TileGeometry tile_geometry(const Pool2dGeometry& g, int64_t x_batch_stride) {
  const Geometry<int32_t> n = narrow<int32_t>(g, x_batch_stride);
  return {n.channels,
          n.height,
          n.width,
          n.out_height,
          n.out_width,
          n.kernel,
          n.stride,
          n.padding,
          n.x_batch_stride,
          FastDivider(n.channels),
          FastDivider(n.out_width),
          FastDivider(n.out_height),
          FastDivider(tiles_along(g.width)),
          FastDivider(tiles_along(g.height))};
}

// The fast paths index in 32 bits: the gather's condition, plus the tile count.
bool fits_fast_path(const Pool2dGeometry& g, int64_t x_batch_stride) {
  const int64_t tiles = g.batch * g.channels * tiles_along(g.height) * tiles_along(g.width);
  return fits_int32(g, x_batch_stride) && tiles + kThreads * int64_t{4096} < std::numeric_limits<int32_t>::max() &&
         g.channels > 0 && g.out_height > 0 && g.out_width > 0;
}

// Whether pairs of elements at even offsets of dx (and dx itself) are aligned for one pair store.
template <typename T>
bool pairs_aligned(const T* dx, int64_t width) {
  return width % 2 == 0 && reinterpret_cast<uintptr_t>(dx) % (2 * sizeof(T)) == 0;
}

template <typename T>
void launch_max_forward(const Queue& q, const T* x, int64_t x_batch_stride, T* y, const Pool2dGeometry& g) {
  const int64_t outputs = output_count(g);
  if (outputs <= 0) return;
  using D = DeviceElement<T>;
  CHEX_POOL_LAUNCH(max_pool_forward_kernel, D, outputs, q.stream, g, x_batch_stride, device_pointer(x),
                   device_pointer(y));
}

template <typename T>
void launch_max_backward(const Queue& q, const T* x, int64_t x_batch_stride, const T* dy, T* dx,
                         const Pool2dGeometry& g) {
  const int64_t inputs = input_count(g);
  if (inputs <= 0) return;
  using D = DeviceElement<T>;
  const D *xd = device_pointer(x), *dyd = device_pointer(dy);
  D* dxd = device_pointer(dx);
  if (g.stride == 2 && g.kernel <= 3 && fits_fast_path(g, x_batch_stride)) {
    const auto tiles = static_cast<int32_t>(g.batch * g.channels * tiles_along(g.height) * tiles_along(g.width));
    const TileGeometry tg = tile_geometry(g, x_batch_stride);
    if (pairs_aligned(dx, g.width)) {
      CHEX_LAUNCH((max_pool_backward_tiles_kernel<D, true>), blocks_for(tiles), kThreads, 0, q.stream, xd, dyd, dxd,
                  tg, tiles);
    } else {
      CHEX_LAUNCH((max_pool_backward_tiles_kernel<D, false>), blocks_for(tiles), kThreads, 0, q.stream, xd, dyd, dxd,
                  tg, tiles);
    }
    return;
  }
  CHEX_POOL_LAUNCH(max_pool_backward_kernel, D, inputs, q.stream, g, x_batch_stride, xd, dyd, dxd);
}

template <typename T>
void launch_avg_forward(const Queue& q, const T* x, int64_t x_batch_stride, T* y, const Pool2dGeometry& g) {
  const int64_t outputs = output_count(g);
  if (outputs <= 0) return;
  using D = DeviceElement<T>;
  CHEX_POOL_LAUNCH(avg_pool_forward_kernel, D, outputs, q.stream, g, x_batch_stride, device_pointer(x),
                   device_pointer(y));
}

template <typename T>
void launch_avg_backward(const Queue& q, const T* dy, T* dx, const Pool2dGeometry& g) {
  const int64_t inputs = input_count(g);
  if (inputs <= 0) return;
  using D = DeviceElement<T>;
  const D* dyd = device_pointer(dy);
  D* dxd = device_pointer(dx);
  const int64_t dense_stride = g.channels * g.height * g.width;
  if (g.kernel == g.stride && g.padding == 0 && fits_fast_path(g, dense_stride)) {
    const auto outputs = static_cast<int32_t>(output_count(g));
    const TileGeometry tg = tile_geometry(g, dense_stride);
    if (g.kernel == 2 && pairs_aligned(dx, g.width)) {
      CHEX_LAUNCH((avg_pool_backward_windows_kernel<D, true>), blocks_for(outputs), kThreads, 0, q.stream, dyd, dxd,
                  tg, outputs);
    } else {
      CHEX_LAUNCH((avg_pool_backward_windows_kernel<D, false>), blocks_for(outputs), kThreads, 0, q.stream, dyd, dxd,
                  tg, outputs);
    }
    return;
  }
  // dx and dy are contiguous: the batch stride of dx stands in for x's.
  CHEX_POOL_LAUNCH(avg_pool_backward_kernel, D, inputs, q.stream, g, dense_stride, dyd, dxd);
}

}  // namespace

void max_pool2d_forward(const Queue& q, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g) {
  launch_max_forward(q, x, x_batch_stride, y, g);
}

void max_pool2d_backward(const Queue& q, const float* x, int64_t x_batch_stride, const float* dy, float* dx,
                         const Pool2dGeometry& g) {
  launch_max_backward(q, x, x_batch_stride, dy, dx, g);
}

void avg_pool2d_forward(const Queue& q, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g) {
  launch_avg_forward(q, x, x_batch_stride, y, g);
}

void avg_pool2d_backward(const Queue& q, const float* dy, float* dx, const Pool2dGeometry& g) {
  launch_avg_backward(q, dy, dx, g);
}

void max_pool2d_forward_bf16(const Queue& q, const BFloat16* x, int64_t x_batch_stride, BFloat16* y,
                             const Pool2dGeometry& g) {
  launch_max_forward(q, x, x_batch_stride, y, g);
}

void max_pool2d_backward_bf16(const Queue& q, const BFloat16* x, int64_t x_batch_stride, const BFloat16* dy,
                              BFloat16* dx, const Pool2dGeometry& g) {
  launch_max_backward(q, x, x_batch_stride, dy, dx, g);
}

void avg_pool2d_forward_bf16(const Queue& q, const BFloat16* x, int64_t x_batch_stride, BFloat16* y,
                             const Pool2dGeometry& g) {
  launch_avg_forward(q, x, x_batch_stride, y, g);
}

void avg_pool2d_backward_bf16(const Queue& q, const BFloat16* dy, BFloat16* dx, const Pool2dGeometry& g) {
  launch_avg_backward(q, dy, dx, g);
}

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
