// im2col + GEMM, the general algorithm (any kernel, stride and padding): a sample's input patches
// laid out as the columns of a matrix, so that one GEMM with the weight computes its output, and
// the adjoint (col2im) for the input gradient. conv2d_cpu.cpp chooses where it runs.
#include <algorithm>

#include "conv2d_cpu_internal.h"

namespace chex::kernels::cpu::conv2d_detail {
namespace {

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

}  // namespace

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

}  // namespace chex::kernels::cpu::conv2d_detail
