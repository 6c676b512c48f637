// A stride-1 convolution with many input channels runs as k^2 "shifted" GEMMs on a zero-padded
// copy of the image instead of one GEMM on its im2col matrix: on the padded grid (Hp x Wp), the
// input of output position q for kernel tap (kh, kw) sits at q + kh Wp + kw for every q, so each
// tap is a GEMM over the same padded buffer at a constant offset, accumulated into an output on the
// padded grid (whose last k - 1 columns per row are junk and dropped). The padded copy is C_in Hp Wp
// floats where im2col writes C_in k^2 Ho Wo. conv2d_cpu.cpp (shifted_gemm) chooses where it runs.
#include <algorithm>

#include "conv2d_cpu_internal.h"
#include "gemm.h"

namespace chex::kernels::cpu::conv2d_detail {
namespace {

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

// grid[c, oh Wp + ow] = dy[c, oh Wo + ow], zero in the junk columns ow >= Wo.
void dy_to_grid(const Conv2dGeometry& g, const PaddedGrid& grid, const float* dy, float* out_grid) {
  for (int64_t c = 0; c < g.out_channels; ++c)
    for (int64_t h = 0; h < g.out_height; ++h) {
      float* row = out_grid + (c * g.out_height + h) * grid.wp;
      std::copy(dy + c * g.out_plane() + h * g.out_width, dy + c * g.out_plane() + (h + 1) * g.out_width, row);
      std::fill(row + g.out_width, row + grid.wp, 0.f);
    }
}

}  // namespace

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

// Floats per thread for the shifted weight gradient: the padded image, dy on the grid and the
// thread's sum of the taps' gradients.
int64_t shifted_weight_slot_size(const Conv2dGeometry& g) {
  return shifted_slot_size(g) + g.out_channels * g.patch_size();
}

// The weight gradient as shifted GEMMs (see the top of this file): tap t's gradient [C_out, C_in] is
// dy on the padded grid [C_out, Q] times the padded image at the tap's offset, which is stored
// channels last ([Q, C_in], one transposing copy per sample) so that the GEMM is N x N: as N x T on
// the channel-major copy, oneDNN repacked the image for each of the nine taps, at half the speed.
// The zero junk columns of dy's grid drop
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

}  // namespace chex::kernels::cpu::conv2d_detail
