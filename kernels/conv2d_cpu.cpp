// The CPU convolution's entry points (kernels/conv2d.h): the choice of algorithm for each
// geometry and pass (im2col + GEMM, shifted-tap GEMMs, tiles of columns for a 1x1, Winograd), the
// threading policy (whole samples per thread, or columns of one sample per thread for batches
// smaller than the thread count) and the workspace sizes that follow from both.
#include "conv2d.h"

#include <omp.h>

#include <algorithm>

#include "conv2d_cpu_internal.h"
#include "conv2d_winograd.h"
#include "gemm.h"

namespace chex::kernels::cpu::conv2d_detail {

int sample_slots(const Conv2dGeometry& g) {
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  return g.batch >= threads ? threads : 1;
}

SampleRange samples_of_this_thread(int64_t batch) {
  const int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
  return {batch * t / threads, batch * (t + 1) / threads};
}

ColumnRange columns_of_this_thread(int64_t columns) {
  const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
  const int64_t share = ((columns + threads - 1) / threads + 15) / 16 * 16;
  const int64_t begin = std::min(columns, t * share);
  return {begin, std::min(columns, begin + share)};
}

}  // namespace chex::kernels::cpu::conv2d_detail

namespace chex::kernels::cpu {
using namespace conv2d_detail;

namespace {

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

// Fewer samples than threads (batch-1 inference): the forward splits each sample's output columns
// over the threads instead (forward_by_columns).
bool splits_columns(const Conv2dGeometry& g) { return !omp_in_parallel() && g.batch < omp_get_max_threads(); }

// Winograd's F(2x2, 3x3) (conv2d_winograd.h) where it applies, except in the forward by columns:
// 2.25x fewer multiply-adds, at the cost of transforming inputs and outputs; on DenseNet's 3x3s it
// beats the shifted GEMMs and im2col in all three passes, transforms included.
bool winograd_forward(const Conv2dGeometry& g) { return winograd::applies(g) && !splits_columns(g); }

// Shifted GEMMs (conv2d_shifted_cpu.cpp) for a stride-1 convolution with many input channels: on
// DenseNet's 3x3 128 -> 32 convolutions clearly faster than im2col (no patch matrix). Few input channels (or K = C_in too small against the k^2 passes over the output, as in
// the transposed 32 -> 128 input gradient) keep im2col.
bool shifted_gemm(const Conv2dGeometry& g) {
  return !g.is_pointwise() && g.stride == 1 && g.in_channels >= 64 && g.in_channels >= g.out_channels;
}

// Fewer samples than threads (batch-1 inference): per sample, one parallel region in which every
// thread computes a contiguous share of the output columns with single-threaded GEMMs, and the
// padding and copy-out are split by channel. The library would otherwise open a region per GEMM
// (nine per shifted 3x3) and leave the padding and copies to one thread.
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

int64_t im2col_workspace_size(const Conv2dGeometry& g) {
  return g.is_pointwise() ? 0 : sample_slots(g) * g.patch_size() * g.out_plane();
}

// Threads that may each need a slot: every thread, whether they take whole samples or split columns.
int64_t worker_count() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

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

size_t conv2d_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& g) {
  return sizeof(float) * static_cast<size_t>(conv2d_workspace_size(g));
}

size_t conv2d_backward_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& g) {
  return sizeof(float) * static_cast<size_t>(conv2d_backward_workspace_size(g));
}

size_t conv2d_normalized_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& g) {
  return sizeof(float) * static_cast<size_t>(conv2d_normalized_workspace_size(g));
}

size_t conv2d_normalized_backward_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& g) {
  return sizeof(float) * static_cast<size_t>(conv2d_normalized_backward_workspace_size(g));
}

void conv2d_forward(const Queue& /*q*/, const Conv2dForwardArgs& a) {
  forward(a.geometry, a.x.data, a.x.batch_stride, nullptr, a.weight, a.bias, a.y.data, a.y.batch_stride,
          static_cast<float*>(a.workspace));
}

void conv2d_forward_normalized(const Queue& /*q*/, const Conv2dForwardNormalizedArgs& a) {
  forward(a.geometry, a.x.data, a.x.batch_stride, &a.norm, a.weight, a.bias, a.y.data, a.y.batch_stride,
          static_cast<float*>(a.workspace));
}

// Per sample: col [K, P] = weight^T [K, C_out] * dy_n [C_out, P], then col2im into dx_n.
void conv2d_backward_data(const Queue& /*q*/, const Conv2dBackwardDataArgs& a) {
  const Conv2dGeometry& g = a.geometry;
  const float* dy = a.dy.data;
  const int64_t dy_batch_stride = a.dy.batch_stride;
  const float* weight = a.weight;
  float* dx = a.dx.data;
  const int64_t dx_batch_stride = a.dx.batch_stride;
  float* workspace = static_cast<float*>(a.workspace);
  if (backward_data_as_convolution(g)) {
    const Conv2dGeometry t = transposed_geometry(g);
    float* flipped = workspace + conv2d_workspace_size(t);
    transpose_flip_kernel(g, weight, flipped);
    forward(t, dy, dy_batch_stride, nullptr, flipped, nullptr, dx, dx_batch_stride, workspace);
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

void conv2d_backward_weight(const Queue& /*q*/, const Conv2dBackwardWeightArgs& a) {
  backward_weight(a.geometry, a.x.data, a.x.batch_stride, nullptr, a.dy.data, a.dy.batch_stride, a.dweight, a.dbias,
                  static_cast<float*>(a.workspace));
}

void conv2d_backward_weight_normalized(const Queue& /*q*/, const Conv2dBackwardWeightNormalizedArgs& a) {
  backward_weight(a.geometry, a.x.data, a.x.batch_stride, &a.norm, a.dy.data, a.dy.batch_stride, a.dweight, a.dbias,
                  static_cast<float*>(a.workspace));
}

}  // namespace chex::kernels::cpu
