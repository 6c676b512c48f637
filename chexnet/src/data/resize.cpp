// Pillow's antialiased bilinear resampling, reproduced from its documented behaviour and checked
// pixel for pixel against Pillow 9.4 in tests/torch (test_image_reference.cpp).
#include "chex/data/resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "chex/error.h"

namespace chex::data {
namespace {

// Coefficients are stored with 22 fractional bits: 8 bits of pixel and 2 of headroom remain in an
// int32 accumulator (Pillow's choice, which the rounding below depends on).
constexpr int kPrecisionBits = 22;

// For each output index along one axis: the first input index it reads, how many it reads, and
// the fixed-point weights of those inputs.
struct AxisFilter {
  int taps = 0;  // weights stored per output (the widest window)
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weights;  // [output][taps]
};

double triangle(double x) {
  x = std::abs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

AxisFilter bilinear_axis(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  // Reducing widens the triangle by the reduction factor (antialiasing); enlarging does not narrow it.
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;  // the triangle's half-width is 1
  // Pillow multiplies by 1/filter_scale rather than dividing by it; the two can differ in the last
  // bit of a double, and a 22-bit weight can then round the other way.
  const double inverse = 1.0 / filter_scale;
  AxisFilter f;
  f.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  f.first.resize(out_size);
  f.count.resize(out_size);
  f.weights.assign(static_cast<size_t>(out_size) * f.taps, 0);
  std::vector<double> w(f.taps);
  for (int i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    // Window bounds round half up, then clamp to the image (truncation of a value > -0.5 gives 0).
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int hi = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int n = hi - lo;
    double sum = 0.0;
    for (int k = 0; k < n; ++k) {
      w[k] = triangle((k + lo - center + 0.5) * inverse);
      sum += w[k];
    }
    f.first[i] = lo;
    f.count[i] = n;
    for (int k = 0; k < n; ++k) {
      const double normalised = sum != 0.0 ? w[k] / sum : w[k];
      const double fixed = normalised * static_cast<double>(1 << kPrecisionBits);
      // Round half away from zero (a triangle's weights are never negative; kept general).
      f.weights[static_cast<size_t>(i) * f.taps + k] = static_cast<int32_t>(fixed < 0 ? fixed - 0.5 : fixed + 0.5);
    }
  }
  return f;
}

uint8_t clip8(int32_t accumulator) {
  return static_cast<uint8_t>(std::clamp(accumulator >> kPrecisionBits, 0, 255));
}

// One output row from one input row, along x.
void filter_row(const uint8_t* in, uint8_t* out, const AxisFilter& f, int out_width) {
  constexpr int C = Image::kChannels;
  for (int x = 0; x < out_width; ++x) {
    const int32_t* k = &f.weights[static_cast<size_t>(x) * f.taps];
    const uint8_t* src = in + static_cast<size_t>(f.first[x]) * C;
    int32_t acc[C];
    std::fill_n(acc, C, int32_t{1} << (kPrecisionBits - 1));  // + one half: round to nearest
    for (int t = 0; t < f.count[x]; ++t)
      for (int c = 0; c < C; ++c) acc[c] += src[t * C + c] * k[t];
    for (int c = 0; c < C; ++c) out[x * C + c] = clip8(acc[c]);
  }
}

}  // namespace

Image resize_bilinear(const Image& image, int width, int height) {
  CHEX_CHECK(width > 0 && height > 0, "resize_bilinear: invalid output size ", width, "x", height);
  CHEX_CHECK(image.width > 0 && image.height > 0, "resize_bilinear: empty input image");
  constexpr int C = Image::kChannels;
  const bool horizontal = width != image.width;
  const bool vertical = height != image.height;
  if (!horizontal && !vertical) return image;

  const AxisFilter fy = bilinear_axis(image.height, height);
  // The horizontal pass only produces the rows the vertical pass will read.
  const int row_first = fy.first.front();
  const int row_last = fy.first.back() + fy.count.back();

  Image tmp;
  const Image* src = &image;
  int row_offset = 0;
  if (horizontal) {
    const AxisFilter fx = bilinear_axis(image.width, width);
    tmp = make_image(width, row_last - row_first);
    for (int y = 0; y < tmp.height; ++y) filter_row(image.row(y + row_first), tmp.row(y), fx, width);
    src = &tmp;
    row_offset = row_first;
  }
  if (!vertical) return tmp;

  Image out = make_image(width, height);
  const size_t stride = static_cast<size_t>(width) * C;
  for (int y = 0; y < height; ++y) {
    const int32_t* k = &fy.weights[static_cast<size_t>(y) * fy.taps];
    const uint8_t* first_row = src->row(fy.first[y] - row_offset);
    uint8_t* dst = out.row(y);
    for (size_t i = 0; i < stride; ++i) {
      int32_t acc = int32_t{1} << (kPrecisionBits - 1);
      for (int t = 0; t < fy.count[y]; ++t) acc += first_row[t * stride + i] * k[t];
      dst[i] = clip8(acc);
    }
  }
  return out;
}

std::pair<int, int> shorter_side_size(int width, int height, int size) {
  CHEX_CHECK(size > 0 && width > 0 && height > 0, "resize: invalid sizes (image ", width, "x", height, ", target ",
             size, ")");
  const int shorter = std::min(width, height), longer = std::max(width, height);
  // torchvision: int(size * long / short) with Python's true division (a correctly rounded double).
  const int other = static_cast<int>(static_cast<double>(int64_t{size} * longer) / shorter);
  return width <= height ? std::pair{size, other} : std::pair{other, size};
}

Image resize_shorter_side(const Image& image, int size) {
  const auto [w, h] = shorter_side_size(image.width, image.height, size);
  return resize_bilinear(image, w, h);
}

}  // namespace chex::data
