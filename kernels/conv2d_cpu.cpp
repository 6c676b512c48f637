#include "conv2d.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "batchnorm.h"
#include "chex/error.h"
#include "conv2d_winograd.h"
#include "gemm.h"

namespace chex::kernels::cpu {
namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 15;

// The output positions o (in [0, out_size)) whose input position o * stride + offset falls inside
// [0, size): one contiguous range, so the loops below need no per-element bounds test.
struct Span {
  int64_t begin, end;
};
Span inside(int64_t offset, int64_t stride, int64_t size, int64_t out_size) {
  int64_t begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t end = offset >= size ? 0 : (size - 1 - offset) / stride + 1;
  end = std::min(end, out_size);
  begin = std::min(begin, end);
  return {begin, end};
}

// dst[i] = x'(src[i * stride]) for i in [0, count), x' being channel c of the input as the
// convolution reads it: as stored, or normalised (InputNormalization) when `norm` is set.
void read_channel(const InputNormalization* norm, int64_t c, const float* src, int64_t stride, float* dst,
                  int64_t count) {
  if (norm) {
    const float mean = norm->mean[c], scale = norm->invstd[c] * norm->gamma[c], beta = norm->beta[c];
#pragma omp simd
    for (int64_t i = 0; i < count; ++i) dst[i] = batch_norm_relu(src[i * stride], mean, scale, beta);
  } else if (stride == 1) {
    std::copy(src, src + count, dst);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < count; ++i) dst[i] = src[i * stride];
  }
}

// col[(c, kh, kw), (oh, ow)] = x'[c, oh * stride + kh - padding, ow * stride + kw - padding],
// zero outside the image. Rows are independent: each thread writes its own.
void im2col(const Conv2dGeometry& g, const float* image, float* col, const InputNormalization* norm) {
  const int64_t rows = g.patch_size(), kernel_area = g.kernel_h * g.kernel_w, out_plane = g.out_plane();
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && rows * out_plane > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / kernel_area, kh = (r / g.kernel_w) % g.kernel_h, kw = r % g.kernel_w;
    const float* plane = image + c * g.in_plane();
    float* out = col + r * out_plane;
    const Span valid_rows = inside(kh - g.padding, g.stride, g.height, g.out_height);
    const Span valid_cols = inside(kw - g.padding, g.stride, g.width, g.out_width);
    for (int64_t oh = 0; oh < g.out_height; ++oh) {
      float* dst = out + oh * g.out_width;
      if (oh < valid_rows.begin || oh >= valid_rows.end) {
        std::fill(dst, dst + g.out_width, 0.f);
        continue;
      }
      std::fill(dst, dst + valid_cols.begin, 0.f);
      if (valid_cols.end > valid_cols.begin) {  // else `first` could lie before the image
        const int64_t first = (oh * g.stride + kh - g.padding) * g.width + (valid_cols.begin * g.stride + kw - g.padding);
        read_channel(norm, c, plane + first, g.stride, dst + valid_cols.begin, valid_cols.end - valid_cols.begin);
      }
      std::fill(dst + valid_cols.end, dst + g.out_width, 0.f);
    }
  }
}

// The adjoint of im2col: image = sum over the patches that cover each pixel. Each thread owns
// whole input channels, so no two threads touch one pixel and the summation order is fixed.
void col2im(const Conv2dGeometry& g, const float* col, float* image) {
  const int64_t out_plane = g.out_plane();
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && g.patch_size() * out_plane > kParallelThreshold)
  for (int64_t c = 0; c < g.in_channels; ++c) {
    float* plane = image + c * g.in_plane();
    std::fill(plane, plane + g.in_plane(), 0.f);
    for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
      const Span valid_rows = inside(kh - g.padding, g.stride, g.height, g.out_height);
      for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
        const Span valid_cols = inside(kw - g.padding, g.stride, g.width, g.out_width);
        const float* src = col + ((c * g.kernel_h + kh) * g.kernel_w + kw) * out_plane;
        for (int64_t oh = valid_rows.begin; oh < valid_rows.end; ++oh) {
          const int64_t base = (oh * g.stride + kh - g.padding) * g.width + kw - g.padding;
          const float* src_row = src + oh * g.out_width;
#pragma omp simd
          for (int64_t ow = valid_cols.begin; ow < valid_cols.end; ++ow) plane[base + ow * g.stride] += src_row[ow];
        }
      }
    }
  }
}

// y[c, :] += bias[c] for one output image.
void add_bias(const Conv2dGeometry& g, const float* bias, float* image) {
  const int64_t plane = g.out_plane();
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && g.out_sample() > kParallelThreshold)
  for (int64_t c = 0; c < g.out_channels; ++c) {
    float* row = image + c * plane;
    const float b = bias[c];
#pragma omp simd
    for (int64_t i = 0; i < plane; ++i) row[i] += b;
  }
}

// dbias[c] = sum over samples and pixels of dy[n, c, :]. Float sums within a plane (vectorised),
// double across samples; each channel is summed by one thread in a fixed order.
void bias_gradient(const Conv2dGeometry& g, const float* dy, int64_t dy_batch_stride, float* dbias) {
  const int64_t plane = g.out_plane();
#pragma omp parallel for schedule(static) if (g.batch * g.out_sample() > kParallelThreshold)
  for (int64_t c = 0; c < g.out_channels; ++c) {
    double total = 0.0;
    for (int64_t n = 0; n < g.batch; ++n) {
      const float* row = dy + n * dy_batch_stride + c * plane;
      float s = 0.f;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < plane; ++i) s += row[i];
      total += s;
    }
    dbias[c] = static_cast<float>(total);
  }
}

// The input gradient of a stride-1 convolution is itself a stride-1 convolution: of dy, padded by
// k - 1 - padding, with the kernel transposed (C_in x C_out) and flipped. Its im2col has C_out k^2
// rows where col2im's matrix has C_in k^2, and its GEMM has K = C_out k^2 where the col2im path's
// has K = C_out and writes the whole C_in k^2 x P matrix: for DenseNet's 3x3 convolutions
// (128 -> 32 channels) a quarter of the memory traffic. Square kernels only (one padding).
bool backward_data_as_convolution(const Conv2dGeometry& g) {
  return !g.is_pointwise() && g.stride == 1 && g.kernel_h == g.kernel_w && g.padding <= g.kernel_h - 1 &&
         g.out_channels < g.in_channels;
}

Conv2dGeometry transposed_geometry(const Conv2dGeometry& g) {
  return Conv2dGeometry::make(g.batch, g.out_channels, g.out_height, g.out_width, g.in_channels, g.kernel_h,
                              g.kernel_w, 1, g.kernel_h - 1 - g.padding);
}

// flipped[ci, co, kh, kw] = weight[co, ci, k - 1 - kh, k - 1 - kw].
void transpose_flip_kernel(const Conv2dGeometry& g, const float* weight, float* flipped) {
  const int64_t k = g.kernel_h, area = k * k;
  for (int64_t ci = 0; ci < g.in_channels; ++ci)
    for (int64_t co = 0; co < g.out_channels; ++co) {
      const float* src = weight + (co * g.in_channels + ci) * area;
      float* dst = flipped + (ci * g.out_channels + co) * area;
      for (int64_t i = 0; i < area; ++i) dst[i] = src[area - 1 - i];
    }
}

// With at least as many samples as threads, each thread takes whole samples (its own im2col and a
// single-threaded GEMM, which oneDNN runs inside a parallel region) rather than all threads
// splitting every per-sample GEMM: one fork/join per call instead of several per sample, and GEMMs
// on DenseNet's small late-block images (P = 49..196) are too small to split well. Batch 1 keeps the
// threads inside the GEMM. Called outside any parallel region by the entry points below.
int sample_slots(const Conv2dGeometry& g) {
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  return g.batch >= threads ? threads : 1;
}

// Fewer samples than threads (batch-1 inference): the forward splits each sample's output columns
// over the threads instead (forward_by_columns).
bool splits_columns(const Conv2dGeometry& g) { return !omp_in_parallel() && g.batch < omp_get_max_threads(); }

// Winograd's F(2x2, 3x3) (conv2d_winograd.h) where it applies, except in the forward by columns:
// 2.25x fewer multiply-adds, at the cost of transforming inputs and outputs. One core, one 56-px
// image of DenseNet's 3x3 (128 -> 32), transforms included: forward 1.26-1.48 ms, input gradient
// 1.26-1.50, weight gradient 1.26-1.35, against 2.3, 2.2 and 2.3 ms by the shifted GEMMs and im2col.
bool winograd_forward(const Conv2dGeometry& g) { return winograd::applies(g) && !splits_columns(g); }

struct SampleRange {
  int64_t begin, end;
};
// Contiguous, static share of the batch for the calling thread of the current team (the whole
// batch outside a parallel region).
SampleRange samples_of_this_thread(int64_t batch) {
  const int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
  return {batch * t / threads, batch * (t + 1) / threads};
}

// Runs body() on `slots` threads, or directly on this thread when slots is 1. Not as
// `omp parallel if (slots > 1)`: a serialised region still counts as a nesting level, so each GEMM
// inside it opened a nested team, and libgomp creates (and ends) fresh threads for every nested
// team: ~600 thread creations per batch-1 forward, which made 2 threads 2x slower than one.
template <class Body>
void in_sample_slots(int slots, const Body& body) {
  if (slots > 1) {
#pragma omp parallel num_threads(slots)
    body();
  } else {
    body();
  }
}

// A stride-1 convolution with many input channels runs as k^2 "shifted" GEMMs on a zero-padded
// copy of the image instead of one GEMM on its im2col matrix: on the padded grid (Hp x Wp), the
// input of output position q for kernel tap (kh, kw) sits at q + kh Wp + kw for every q, so each
// tap is a GEMM over the same padded buffer at a constant offset, accumulated into an output on the
// padded grid (whose last k - 1 columns per row are junk and dropped). The padded copy is C_in Hp Wp
// floats where im2col writes C_in k^2 Ho Wo. Measured on DenseNet's 3x3 128 -> 32 convolutions,
// one thread: 1.4x (14 px) to 1.8x (56 px) faster. Few input channels (or K = C_in too small
// against the k^2 passes over the output, as in the transposed 32 -> 128 input gradient) keep im2col.
bool shifted_gemm(const Conv2dGeometry& g) {
  return !g.is_pointwise() && g.stride == 1 && g.in_channels >= 64 && g.in_channels >= g.out_channels;
}

struct PaddedGrid {
  int64_t hp, wp, columns;  // columns: the last valid output position on the grid, plus one
};
PaddedGrid padded_grid(const Conv2dGeometry& g) {
  const int64_t hp = g.height + 2 * g.padding, wp = g.width + 2 * g.padding;
  return {hp, wp, (g.out_height - 1) * wp + g.out_width};
}

// Floats per thread: the padded image and the output on the padded grid.
int64_t shifted_slot_size(const Conv2dGeometry& g) {
  const PaddedGrid grid = padded_grid(g);
  return g.in_channels * grid.hp * grid.wp + g.out_channels * g.out_height * grid.wp;
}

// taps[(kh kW + kw), co, ci] = weight[co, ci, kh, kw]: one row-major C_out x C_in matrix per tap.
void split_taps(const Conv2dGeometry& g, const float* weight, float* taps) {
  const int64_t area = g.kernel_h * g.kernel_w, plane = g.out_channels * g.in_channels;
  for (int64_t i = 0; i < plane; ++i)
    for (int64_t t = 0; t < area; ++t) taps[t * plane + i] = weight[i * area + t];
}

// padded[c] = x'[c] with `padding` zeros around it, for one channel.
void pad_channel(const Conv2dGeometry& g, const PaddedGrid& grid, const float* image, float* padded, int64_t c,
                 const InputNormalization* norm) {
  const int64_t p = g.padding;
  float* dst = padded + c * grid.hp * grid.wp;
  const float* src = image + c * g.in_plane();
  std::fill(dst, dst + p * grid.wp, 0.f);
  for (int64_t h = 0; h < g.height; ++h) {
    float* row = dst + (h + p) * grid.wp;
    std::fill(row, row + p, 0.f);
    read_channel(norm, c, src + h * g.width, 1, row + p, g.width);
    std::fill(row + p + g.width, row + grid.wp, 0.f);
  }
  std::fill(dst + (g.height + p) * grid.wp, dst + grid.hp * grid.wp, 0.f);
}

void pad_image(const Conv2dGeometry& g, const PaddedGrid& grid, const float* image, float* padded,
               const InputNormalization* norm) {
  for (int64_t c = 0; c < g.in_channels; ++c) pad_channel(g, grid, image, padded, c, norm);
}

// padded[q, c] = x'[c] with `padding` zeros around it, position-major (channels last): the
// weight gradient's GEMMs then read it untransposed (see shifted_backward_weight). 16 channels at a
// time through the whole image: each position's 16 values are one gather from 16 sequential
// streams (16 cache lines, in L1 for 16 positions) and one cache-line store. Reading one position
// of all the channels at once strides by a whole plane per read, a cache miss each: 3.7% of a
// 128-px training step, against 1.4% this way.
void pad_image_channels_last(const Conv2dGeometry& g, const PaddedGrid& grid, const float* image, float* padded,
                             const InputNormalization* norm) {
  constexpr int64_t kBlock = 16;
  const int64_t p = g.padding, channels = g.in_channels, row_size = grid.wp * channels, plane = g.in_plane();
  std::fill(padded, padded + p * row_size, 0.f);
  for (int64_t h = 0; h < g.height; ++h) {
    float* row = padded + (h + p) * row_size;
    std::fill(row, row + p * channels, 0.f);
    std::fill(row + (p + g.width) * channels, row + row_size, 0.f);
  }
  std::fill(padded + (g.height + p) * row_size, padded + grid.hp * row_size, 0.f);
  float mean[kBlock], scale[kBlock], beta[kBlock];
  for (int64_t c0 = 0; c0 < channels; c0 += kBlock) {
    const int64_t nc = std::min(kBlock, channels - c0);
    const float* src = image + c0 * plane;
    if (norm)
      for (int64_t c = 0; c < nc; ++c) {
        mean[c] = norm->mean[c0 + c];
        scale[c] = norm->invstd[c0 + c] * norm->gamma[c0 + c];
        beta[c] = norm->beta[c0 + c];
      }
    for (int64_t h = 0; h < g.height; ++h)
      for (int64_t w = 0; w < g.width; ++w) {
        const float* at = src + h * g.width + w;
        float* dst = padded + (h + p) * row_size + (w + p) * channels + c0;
        if (norm) {
#pragma omp simd
          for (int64_t c = 0; c < nc; ++c) dst[c] = batch_norm_relu(at[c * plane], mean[c], scale[c], beta[c]);
        } else {
#pragma omp simd
          for (int64_t c = 0; c < nc; ++c) dst[c] = at[c * plane];
        }
      }
  }
}

// out[c] = the valid columns of output channel c on the padded grid.
void grid_to_output(const Conv2dGeometry& g, const PaddedGrid& grid, const float* out_grid, float* out, int64_t c) {
  const int64_t ld_out = g.out_height * grid.wp;
  for (int64_t h = 0; h < g.out_height; ++h) {
    const float* src = out_grid + c * ld_out + h * grid.wp;
    std::copy(src, src + g.out_width, out + c * g.out_plane() + h * g.out_width);
  }
}

// Grid columns [begin, end) of one sample's output on the padded grid: the k^2 taps' GEMMs.
void shifted_taps_gemm(const Conv2dGeometry& g, const PaddedGrid& grid, const float* taps, const float* padded,
                       float* out_grid, int64_t begin, int64_t end) {
  const int64_t plane = grid.hp * grid.wp, ld_out = g.out_height * grid.wp;
  const int64_t tap_size = g.out_channels * g.in_channels, area = g.kernel_h * g.kernel_w;
  for (int64_t t = 0; t < area && end > begin; ++t) {
    const int64_t offset = (t / g.kernel_w) * grid.wp + t % g.kernel_w + begin;
    sgemm(false, false, g.out_channels, end - begin, g.in_channels, 1.f, taps + t * tap_size, g.in_channels,
          padded + offset, plane, t == 0 ? 0.f : 1.f, out_grid + begin, ld_out);
  }
}

// One sample's y [C_out, Ho Wo] from its padded image, through the grid buffer `out_grid`.
void shifted_forward_sample(const Conv2dGeometry& g, const float* taps, const float* padded, float* out_grid,
                            float* out) {
  const PaddedGrid grid = padded_grid(g);
  shifted_taps_gemm(g, grid, taps, padded, out_grid, 0, grid.columns);
  for (int64_t c = 0; c < g.out_channels; ++c) grid_to_output(g, grid, out_grid, out, c);
}

// A 1x1 convolution that normalises its input (InputNormalization) has no im2col to do it in: it
// normalises a tile of columns of every input channel into a buffer of the thread's and runs the
// GEMM on that, from cache. A tile keeps near 512 KB (L2 is 1 MB per core on Zen 4) but takes at
// least 256 columns, below which the GEMM's packing of the weight would dominate.
constexpr int64_t kTileFloats = 1 << 17;
int64_t tile_columns(const Conv2dGeometry& g) {
  const int64_t columns = std::max<int64_t>(256, (kTileFloats / std::max<int64_t>(g.in_channels, 1) + 15) / 16 * 16);
  return std::max<int64_t>(1, std::min(columns, g.out_plane()));
}
int64_t tile_size(const Conv2dGeometry& g) { return g.in_channels * tile_columns(g); }

// tile [C_in, end - begin] = x' of one image's columns [begin, end).
void normalize_tile(const Conv2dGeometry& g, const float* image, const InputNormalization& norm, int64_t begin,
                    int64_t end, float* tile) {
  const int64_t n = end - begin;
  for (int64_t c = 0; c < g.in_channels; ++c)
    read_channel(&norm, c, image + c * g.in_plane() + begin, 1, tile + c * n, n);
}

// Columns [begin, end) of one sample's 1x1 output: one GEMM on the image, or tile by tile on x'.
void pointwise_forward(const Conv2dGeometry& g, const float* image, const InputNormalization* norm,
                       const float* weight, float* out, int64_t begin, int64_t end, float* tile) {
  const int64_t p = g.out_plane(), k = g.in_channels;
  if (!norm) {
    if (end > begin) sgemm(false, false, g.out_channels, end - begin, k, 1.f, weight, k, image + begin, p, 0.f, out + begin, p);
    return;
  }
  for (int64_t j = begin, step = tile_columns(g); j < end; j += step) {
    const int64_t n = std::min(step, end - j);
    normalize_tile(g, image, *norm, j, j + n, tile);
    sgemm(false, false, g.out_channels, n, k, 1.f, weight, k, tile, n, 0.f, out + j, p);
  }
}

// The calling thread's share of `columns` output columns, in multiples of 16 (a cache line of
// floats, so that no two threads write one line of a row).
struct ColumnRange {
  int64_t begin, end;
};
ColumnRange columns_of_this_thread(int64_t columns) {
  const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
  const int64_t share = ((columns + threads - 1) / threads + 15) / 16 * 16;
  const int64_t begin = std::min(columns, t * share);
  return {begin, std::min(columns, begin + share)};
}

// Fewer samples than threads (batch-1 inference): per sample, one parallel region in which every
// thread computes a contiguous share of the output columns with single-threaded GEMMs, and the
// padding and copy-out are split by channel. The library would otherwise open a region per GEMM
// (nine per shifted 3x3) and leave the padding and copies to one thread. DenseNet-121 at batch 1,
// 224 px, 2 threads, sleeping OpenMP threads (OMP_WAIT_POLICY=passive): 0.11-0.12 -> 0.064-0.071 s.
void forward_by_columns(const Conv2dGeometry& g, const float* x, int64_t x_batch_stride, const InputNormalization* norm,
                        const float* weight, const float* taps, float* y, int64_t y_batch_stride, float* workspace) {
  const int64_t k = g.patch_size(), p = g.out_plane();
  for (int64_t n = 0; n < g.batch; ++n) {
    const float* image = x + n * x_batch_stride;
    float* out = y + n * y_batch_stride;
    if (taps) {
      const PaddedGrid grid = padded_grid(g);
      float* padded = workspace;
      float* out_grid = workspace + g.in_channels * grid.hp * grid.wp;
#pragma omp parallel
      {
#pragma omp for schedule(static)
        for (int64_t c = 0; c < g.in_channels; ++c) pad_channel(g, grid, image, padded, c, norm);
        const ColumnRange cols = columns_of_this_thread(grid.columns);
        shifted_taps_gemm(g, grid, taps, padded, out_grid, cols.begin, cols.end);
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t c = 0; c < g.out_channels; ++c) grid_to_output(g, grid, out_grid, out, c);
      }
    } else if (g.is_pointwise()) {
#pragma omp parallel
      {
        const ColumnRange cols = columns_of_this_thread(p);
        pointwise_forward(g, image, norm, weight, out, cols.begin, cols.end,
                          workspace + omp_get_thread_num() * tile_size(g));
      }
    } else {
      im2col(g, image, workspace, norm);  // parallel by rows
#pragma omp parallel
      {
        const ColumnRange cols = columns_of_this_thread(p);
        if (cols.end > cols.begin)
          sgemm(false, false, g.out_channels, cols.end - cols.begin, k, 1.f, weight, k, workspace + cols.begin, p,
                0.f, out + cols.begin, p);
      }
    }
  }
}

// grid[c, oh Wp + ow] = dy[c, oh Wo + ow], zero in the junk columns ow >= Wo.
void dy_to_grid(const Conv2dGeometry& g, const PaddedGrid& grid, const float* dy, float* out_grid) {
  for (int64_t c = 0; c < g.out_channels; ++c)
    for (int64_t h = 0; h < g.out_height; ++h) {
      float* row = out_grid + (c * g.out_height + h) * grid.wp;
      std::copy(dy + c * g.out_plane() + h * g.out_width, dy + c * g.out_plane() + (h + 1) * g.out_width, row);
      std::fill(row + g.out_width, row + grid.wp, 0.f);
    }
}

// Floats per thread for the shifted weight gradient: the padded image, dy on the grid and the
// thread's sum of the taps' gradients.
int64_t shifted_weight_slot_size(const Conv2dGeometry& g) {
  return shifted_slot_size(g) + g.out_channels * g.patch_size();
}

}  // namespace

Conv2dGeometry Conv2dGeometry::make(int64_t batch, int64_t in_channels, int64_t height, int64_t width,
                                    int64_t out_channels, int64_t kernel_h, int64_t kernel_w, int64_t stride,
                                    int64_t padding) {
  Conv2dGeometry g;
  g.batch = batch;
  g.in_channels = in_channels;
  g.height = height;
  g.width = width;
  g.out_channels = out_channels;
  g.kernel_h = kernel_h;
  g.kernel_w = kernel_w;
  g.stride = stride;
  g.padding = padding;
  g.out_height = (height + 2 * padding - kernel_h) / stride + 1;
  g.out_width = (width + 2 * padding - kernel_w) / stride + 1;
  return g;
}

namespace {
int64_t im2col_workspace_size(const Conv2dGeometry& g) {
  return g.is_pointwise() ? 0 : sample_slots(g) * g.patch_size() * g.out_plane();
}

// Threads that may each need a slot: every thread, whether they take whole samples or split columns.
int64_t worker_count() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }
}  // namespace

// Per thread, an im2col matrix, or the padded image and output grid of the shifted GEMMs (and the
// kernel split into taps, shared); a 1x1 needs none.
int64_t conv2d_workspace_size(const Conv2dGeometry& g) {
  if (winograd_forward(g)) return sample_slots(g) * winograd::forward_slot_size(g) + winograd::kernel_size(g);
  if (shifted_gemm(g)) return sample_slots(g) * shifted_slot_size(g) + g.out_channels * g.patch_size();
  return im2col_workspace_size(g);
}

// A 1x1 that normalises its input adds a tile per thread (see pointwise_forward).
int64_t conv2d_normalized_workspace_size(const Conv2dGeometry& g) {
  return g.is_pointwise() ? worker_count() * tile_size(g) : conv2d_workspace_size(g);
}

// The backward passes add, for the weight gradient, a partial sum per thread after the first
// (which accumulates into dweight itself) or the shifted GEMMs' buffers, and for the input
// gradient of a stride-1 convolution the transposed geometry's forward workspace and the flipped
// kernel.
int64_t conv2d_backward_workspace_size(const Conv2dGeometry& g) {
  int64_t size = im2col_workspace_size(g) + (sample_slots(g) - 1) * g.out_channels * g.patch_size();
  if (winograd::applies(g)) {
    size = std::max(size, sample_slots(g) * winograd::weight_gradient_slot_size(g));
  } else if (shifted_gemm(g)) {
    size = std::max(size, sample_slots(g) * shifted_weight_slot_size(g));
  }
  if (backward_data_as_convolution(g)) {
    const Conv2dGeometry t = transposed_geometry(g);
    size = std::max(size, conv2d_workspace_size(t) + g.in_channels * t.patch_size());
  }
  return size;
}

// After the partial sums, a 1x1 that normalises its input adds a tile per thread.
int64_t conv2d_normalized_backward_workspace_size(const Conv2dGeometry& g) {
  return conv2d_backward_workspace_size(g) + (g.is_pointwise() ? sample_slots(g) * tile_size(g) : 0);
}

namespace {
// The kernel transformed once, then each thread's samples through its own slot.
void winograd_forward_samples(const Conv2dGeometry& g, const float* x, int64_t x_batch_stride,
                              const InputNormalization* norm, const float* weight, const float* bias, float* y,
                              int64_t y_batch_stride, float* workspace) {
  const int slots = sample_slots(g);
  const int64_t slot_size = winograd::forward_slot_size(g);
  float* u = workspace + slots * slot_size;
  winograd::transform_kernel(g, weight, u);
  in_sample_slots(slots, [&] {
    const SampleRange range = samples_of_this_thread(g.batch);
    float* slot = workspace + omp_get_thread_num() * slot_size;
    for (int64_t n = range.begin; n < range.end; ++n) {
      float* out = y + n * y_batch_stride;
      winograd::forward_sample(g, u, x + n * x_batch_stride, norm, out, slot);
      if (bias) add_bias(g, bias, out);
    }
  });
}

// Per sample: y_n [C_out, P] = weight [C_out, K] * col_n [K, P], with K = C_in kH kW, P = Ho Wo
// (or the same sum as shifted GEMMs, see shifted_gemm; or Winograd's, see winograd_forward).
void forward(const Conv2dGeometry& g, const float* x, int64_t x_batch_stride, const InputNormalization* norm,
             const float* weight, const float* bias, float* y, int64_t y_batch_stride, float* workspace) {
  if (winograd_forward(g)) {
    winograd_forward_samples(g, x, x_batch_stride, norm, weight, bias, y, y_batch_stride, workspace);
    return;
  }
  const int64_t k = g.patch_size(), p = g.out_plane();
  const int64_t slot_size = g.is_pointwise() ? tile_size(g) : k * p;
  const int slots = sample_slots(g);
  const bool shifted = shifted_gemm(g);
  float* taps = shifted ? workspace + slots * shifted_slot_size(g) : nullptr;
  if (shifted) split_taps(g, weight, taps);
  if (splits_columns(g)) {
    forward_by_columns(g, x, x_batch_stride, norm, weight, taps, y, y_batch_stride, workspace);
    if (bias)
      for (int64_t n = 0; n < g.batch; ++n) add_bias(g, bias, y + n * y_batch_stride);
    return;
  }
  in_sample_slots(slots, [&] {
    const SampleRange range = samples_of_this_thread(g.batch);
    float* slot = workspace ? workspace + omp_get_thread_num() * (shifted ? shifted_slot_size(g) : slot_size) : nullptr;
    for (int64_t n = range.begin; n < range.end; ++n) {
      const float* image = x + n * x_batch_stride;
      float* out = y + n * y_batch_stride;
      if (shifted) {
        const PaddedGrid grid = padded_grid(g);
        pad_image(g, grid, image, slot, norm);
        shifted_forward_sample(g, taps, slot, slot + g.in_channels * grid.hp * grid.wp, out);
      } else if (g.is_pointwise()) {
        pointwise_forward(g, image, norm, weight, out, 0, p, slot);
      } else {
        im2col(g, image, slot, norm);
        sgemm(false, false, g.out_channels, p, k, 1.f, weight, k, slot, p, 0.f, out, p);
      }
      if (bias) add_bias(g, bias, out);
    }
  });
}
}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const float* x, int64_t x_batch_stride, const float* weight,
                    const float* bias, float* y, int64_t y_batch_stride, float* workspace) {
  forward(g, x, x_batch_stride, nullptr, weight, bias, y, y_batch_stride, workspace);
}

void conv2d_forward_normalized(const Conv2dGeometry& g, const float* x, int64_t x_batch_stride,
                               const InputNormalization& norm, const float* weight, const float* bias, float* y,
                               int64_t y_batch_stride, float* workspace) {
  forward(g, x, x_batch_stride, &norm, weight, bias, y, y_batch_stride, workspace);
}

// Per sample: col [K, P] = weight^T [K, C_out] * dy_n [C_out, P], then col2im into dx_n.
void conv2d_backward_data(const Conv2dGeometry& g, const float* dy, int64_t dy_batch_stride, const float* weight,
                          float* dx, int64_t dx_batch_stride, float* workspace) {
  if (backward_data_as_convolution(g)) {
    const Conv2dGeometry t = transposed_geometry(g);
    float* flipped = workspace + conv2d_workspace_size(t);
    transpose_flip_kernel(g, weight, flipped);
    conv2d_forward(t, dy, dy_batch_stride, flipped, nullptr, dx, dx_batch_stride, workspace);
    return;
  }
  const int64_t k = g.patch_size(), p = g.out_plane(), col_size = g.is_pointwise() ? 0 : k * p;
  const int slots = sample_slots(g);
  in_sample_slots(slots, [&] {
    const SampleRange range = samples_of_this_thread(g.batch);
    float* col_buffer = workspace ? workspace + omp_get_thread_num() * col_size : nullptr;
    for (int64_t n = range.begin; n < range.end; ++n) {
      const float* grad_out = dy + n * dy_batch_stride;
      float* grad_in = dx + n * dx_batch_stride;
      if (g.is_pointwise()) {
        sgemm(true, false, k, p, g.out_channels, 1.f, weight, k, grad_out, p, 0.f, grad_in, p);
      } else {
        sgemm(true, false, k, p, g.out_channels, 1.f, weight, k, grad_out, p, 0.f, col_buffer, p);
        col2im(g, col_buffer, grad_in);
      }
    }
  });
}

namespace {

// The weight gradient as shifted GEMMs (see shifted_gemm): tap t's gradient [C_out, C_in] is
// dy on the padded grid [C_out, Q] times the padded image at the tap's offset, which is stored
// channels last ([Q, C_in], one transposing copy per sample) so that the GEMM is N x N: as N x T on
// the channel-major copy, oneDNN repacked the image for each of the nine taps and ran at 55 GFLOP/s
// on one core (block 1, Q = 3246), against 107 as N x N. The zero junk columns of dy's grid drop
// the positions that are not outputs. Each thread sums its samples into its own taps, and the
// threads' sums are added in thread order into dweight's layout.
void shifted_backward_weight(const Conv2dGeometry& g, const float* x, int64_t x_batch_stride,
                             const InputNormalization* norm, const float* dy, int64_t dy_batch_stride, float* dweight,
                             float* workspace) {
  const PaddedGrid grid = padded_grid(g);
  const int64_t plane = grid.hp * grid.wp, ld_grid = g.out_height * grid.wp;
  const int64_t area = g.kernel_h * g.kernel_w, tap_size = g.out_channels * g.in_channels;
  const int64_t slot_size = shifted_weight_slot_size(g);
  const int slots = sample_slots(g);
  int used = 1;
  in_sample_slots(slots, [&] {
#pragma omp single
    used = omp_get_num_threads();
    const SampleRange range = samples_of_this_thread(g.batch);
    float* padded = workspace + omp_get_thread_num() * slot_size;
    float* dy_grid = padded + g.in_channels * plane;
    float* taps = dy_grid + g.out_channels * ld_grid;
    for (int64_t n = range.begin; n < range.end; ++n) {
      pad_image_channels_last(g, grid, x + n * x_batch_stride, padded, norm);
      dy_to_grid(g, grid, dy + n * dy_batch_stride, dy_grid);
      for (int64_t t = 0; t < area; ++t) {
        const int64_t offset = (t / g.kernel_w) * grid.wp + t % g.kernel_w;
        sgemm(false, false, g.out_channels, g.in_channels, grid.columns, 1.f, dy_grid, ld_grid,
              padded + offset * g.in_channels, g.in_channels, n == range.begin ? 0.f : 1.f, taps + t * tap_size,
              g.in_channels);
      }
    }
  });
  const int64_t slot_taps = shifted_slot_size(g);
#pragma omp parallel for schedule(static) if (tap_size * area > kParallelThreshold)
  for (int64_t i = 0; i < tap_size; ++i)
    for (int64_t t = 0; t < area; ++t) {
      float total = 0.f;
      for (int s = 0; s < used; ++s) total += workspace[s * slot_size + slot_taps + t * tap_size + i];
      dweight[i * area + t] = total;
    }
}

// The weight gradient by Winograd's algorithm: each thread sums its samples' dU in its slot, and
// the sums are added in thread order and transformed back once.
void winograd_backward_weight(const Conv2dGeometry& g, const float* x, int64_t x_batch_stride,
                              const InputNormalization* norm, const float* dy, int64_t dy_batch_stride,
                              float* dweight, float* workspace) {
  const int64_t slot_size = winograd::weight_gradient_slot_size(g);
  int used = 1;
  in_sample_slots(sample_slots(g), [&] {
#pragma omp single
    used = omp_get_num_threads();
    const SampleRange range = samples_of_this_thread(g.batch);
    float* slot = workspace + omp_get_thread_num() * slot_size;
    for (int64_t n = range.begin; n < range.end; ++n)
      winograd::weight_gradient_sample(g, x + n * x_batch_stride, norm, dy + n * dy_batch_stride, n == range.begin,
                                       slot);
  });
  winograd::weight_gradient_finish(g, workspace, used, dweight);
}

// sum += dy_n [C_out, P] * x'_n^T [P, C_in] for a 1x1 convolution with a normalised input, tile by
// tile of columns (see pointwise_forward); overwrites sum when `overwrite`.
void normalized_pointwise_weight_sample(const Conv2dGeometry& g, const float* image, const InputNormalization& norm,
                                        const float* dy, float* sum, bool overwrite, float* tile) {
  const int64_t p = g.out_plane(), k = g.in_channels;
  for (int64_t j = 0, step = tile_columns(g); j < p; j += step) {
    const int64_t n = std::min(step, p - j);
    normalize_tile(g, image, norm, j, j + n, tile);
    sgemm(false, true, g.out_channels, k, n, 1.f, dy + j, p, tile, n, overwrite && j == 0 ? 0.f : 1.f, sum, k);
  }
}

// One channel's tile of conv2d_backward_data_normalized: the ReLU mask on the GEMM's tile g of
// weight^T dy, the two sums (in float along the tile, vectorised) and, with kAddsDx, dx += scale dy'.
// The mask is the forward's own test (its ReLU passed a positive value), as a multiplication: GCC
// vectorises that, not a select.
template <bool kAddsDx>
void normalized_pointwise_data_channel(const float* x, const float* g, int64_t n, float mean, float scale, float beta,
                                       float* dx, double& sum_dy, double& sum_dy_centered) {
  float s = 0.f, s_centered = 0.f;
#pragma omp simd reduction(+ : s, s_centered)
  for (int64_t i = 0; i < n; ++i) {
    const float masked = g[i] * (batch_norm_relu(x[i], mean, scale, beta) > 0.f ? 1.f : 0.f);
    s += masked;
    s_centered += masked * (x[i] - mean);
    if constexpr (kAddsDx) dx[i] += scale * masked;
  }
  sum_dy += s;
  sum_dy_centered += s_centered;
}

// One sample of conv2d_backward_data_normalized, per tile of columns: the GEMM's tile [C_in, n] of
// weight^T dy, then each channel's part from cache (sums in double across tiles).
void normalized_pointwise_data_sample(const Conv2dGeometry& g, const float* dy, const float* weight,
                                      const float* image, const InputNormalization& norm, float* dx, double* sum_dy,
                                      double* sum_dy_centered, float* tile) {
  const int64_t p = g.out_plane(), k = g.in_channels;
  for (int64_t j = 0, step = tile_columns(g); j < p; j += step) {
    const int64_t n = std::min(step, p - j);
    sgemm(true, false, k, n, g.out_channels, 1.f, weight, k, dy + j, p, 0.f, tile, n);
    for (int64_t c = 0; c < k; ++c) {
      const float mean = norm.mean[c], scale = norm.invstd[c] * norm.gamma[c], beta = norm.beta[c];
      const float* xc = image + c * p + j;
      if (dx)
        normalized_pointwise_data_channel<true>(xc, tile + c * n, n, mean, scale, beta, dx + c * p + j, sum_dy[c],
                                                sum_dy_centered[c]);
      else
        normalized_pointwise_data_channel<false>(xc, tile + c * n, n, mean, scale, beta, nullptr, sum_dy[c],
                                                 sum_dy_centered[c]);
    }
  }
}

// dweight [C_out, K] = sum_n dy_n [C_out, P] * col_n^T [P, K], accumulated by the GEMM (beta = 1
// after a thread's first sample). Thread 0 accumulates into dweight, the others into partial sums
// that are added afterwards in thread order: deterministic for a given thread count.
void backward_weight(const Conv2dGeometry& g, const float* x, int64_t x_batch_stride, const InputNormalization* norm,
                     const float* dy, int64_t dy_batch_stride, float* dweight, float* dbias, float* workspace) {
  if (dbias) bias_gradient(g, dy, dy_batch_stride, dbias);
  if (!dweight) return;
  const int64_t k = g.patch_size(), p = g.out_plane(), col_size = g.is_pointwise() ? 0 : k * p;
  const int64_t weight_size = g.out_channels * k;
  if (g.batch == 0) std::fill(dweight, dweight + weight_size, 0.f);
  const int slots = sample_slots(g);
  if (winograd::applies(g) && g.batch > 0) {
    winograd_backward_weight(g, x, x_batch_stride, norm, dy, dy_batch_stride, dweight, workspace);
    return;
  }
  if (shifted_gemm(g) && g.batch > 0) {
    shifted_backward_weight(g, x, x_batch_stride, norm, dy, dy_batch_stride, dweight, workspace);
    return;
  }
  float* partials = workspace ? workspace + slots * col_size : nullptr;
  float* tiles = partials ? partials + (slots - 1) * weight_size : nullptr;  // 1x1 with a normalised input
  int used = 1;
  in_sample_slots(slots, [&] {
    const int t = omp_get_thread_num();
#pragma omp single
    used = omp_get_num_threads();
    const SampleRange range = samples_of_this_thread(g.batch);
    float* col_buffer = workspace ? workspace + t * col_size : nullptr;
    float* sum = t == 0 ? dweight : partials + (t - 1) * weight_size;
    for (int64_t n = range.begin; n < range.end; ++n) {
      const float* image = x + n * x_batch_stride;
      if (norm && g.is_pointwise()) {
        normalized_pointwise_weight_sample(g, image, *norm, dy + n * dy_batch_stride, sum, n == range.begin,
                                           tiles + t * tile_size(g));
        continue;
      }
      const float* col = image;
      if (!g.is_pointwise()) {
        im2col(g, image, col_buffer, norm);
        col = col_buffer;
      }
      sgemm(false, true, g.out_channels, k, p, 1.f, dy + n * dy_batch_stride, p, col, p,
            n == range.begin ? 0.f : 1.f, sum, k);
    }
  });
  if (used > 1) {
#pragma omp parallel for schedule(static) if (weight_size > kParallelThreshold)
    for (int64_t i = 0; i < weight_size; ++i) {
      float total = dweight[i];
      for (int t = 1; t < used; ++t) total += partials[(t - 1) * weight_size + i];
      dweight[i] = total;
    }
  }
}

}  // namespace

void conv2d_backward_data_normalized(const Conv2dGeometry& g, const float* dy, int64_t dy_batch_stride,
                                     const float* weight, const float* x, int64_t x_batch_stride,
                                     const InputNormalization& norm, float* dx, int64_t dx_batch_stride,
                                     double* sum_dy, double* sum_dy_centered, float* workspace) {
  CHEX_CHECK(g.is_pointwise(), "conv2d_backward_data_normalized: only for 1x1, stride-1, unpadded convolutions");
  const int slots = sample_slots(g);
  const int64_t k = g.in_channels;
  // Each thread's sums, added in thread order: deterministic for a given thread count.
  std::vector<double> partial(static_cast<size_t>(2 * slots * k), 0.0);
  in_sample_slots(slots, [&] {
    const int t = omp_get_thread_num();
    const SampleRange range = samples_of_this_thread(g.batch);
    double* sums = partial.data() + 2 * t * k;
    for (int64_t n = range.begin; n < range.end; ++n)
      normalized_pointwise_data_sample(g, dy + n * dy_batch_stride, weight, x + n * x_batch_stride, norm,
                                       dx ? dx + n * dx_batch_stride : nullptr, sums, sums + k,
                                       workspace + t * tile_size(g));
  });
  for (int64_t c = 0; c < k; ++c) {
    double s = 0.0, s_centered = 0.0;
    for (int t = 0; t < slots; ++t) {
      s += partial[static_cast<size_t>(2 * t * k + c)];
      s_centered += partial[static_cast<size_t>((2 * t + 1) * k + c)];
    }
    sum_dy[c] = s;
    sum_dy_centered[c] = s_centered;
  }
}

void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, int64_t x_batch_stride, const float* dy,
                            int64_t dy_batch_stride, float* dweight, float* dbias, float* workspace) {
  backward_weight(g, x, x_batch_stride, nullptr, dy, dy_batch_stride, dweight, dbias, workspace);
}

void conv2d_backward_weight_normalized(const Conv2dGeometry& g, const float* x, int64_t x_batch_stride,
                                       const InputNormalization& norm, const float* dy, int64_t dy_batch_stride,
                                       float* dweight, float* dbias, float* workspace) {
  backward_weight(g, x, x_batch_stride, &norm, dy, dy_batch_stride, dweight, dbias, workspace);
}

}  // namespace chex::kernels::cpu
