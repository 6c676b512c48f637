#include "chex/data/transforms.h"

#include <algorithm>

#include "chex/error.h"

namespace chex::data {
namespace {

// Python's round(d / 2.0) for an integer d >= 0: halves go to the even neighbour.
int half_rounded_to_even(int d) {
  const int q = d / 2;
  return d % 2 == 0 || q % 2 == 0 ? q : q + 1;
}

void check_crop_size(const Image& image, int size, const char* what) {
  CHEX_CHECK(size > 0 && size <= image.width && size <= image.height, what, ": crop size ", size,
             " does not fit the ", image.width, "x", image.height, " image");
}

}  // namespace

Image crop(const Image& image, int left, int top, int width, int height) {
  CHEX_CHECK(width > 0 && height > 0 && left >= 0 && top >= 0 && left + width <= image.width &&
                 top + height <= image.height,
             "crop: the rectangle ", width, "x", height, " at (", left, ", ", top, ") does not lie inside the ",
             image.width, "x", image.height, " image");
  Image out = make_image(width, height);
  for (int y = 0; y < height; ++y)
    std::copy_n(image.row(top + y) + static_cast<size_t>(left) * Image::kChannels,
                static_cast<size_t>(width) * Image::kChannels, out.row(y));
  return out;
}

Image hflip(const Image& image) {
  Image out = make_image(image.width, image.height);
  constexpr int C = Image::kChannels;
  for (int y = 0; y < image.height; ++y) {
    const uint8_t* in = image.row(y);
    uint8_t* dst = out.row(y);
    for (int x = 0; x < image.width; ++x) std::copy_n(in + (image.width - 1 - x) * C, C, dst + x * C);
  }
  return out;
}

Image center_crop(const Image& image, int size) {
  check_crop_size(image, size, "center_crop");
  return crop(image, half_rounded_to_even(image.width - size), half_rounded_to_even(image.height - size), size, size);
}

std::array<Image, 5> five_crop(const Image& image, int size) {
  check_crop_size(image, size, "five_crop");
  const int right = image.width - size, bottom = image.height - size;
  return {crop(image, 0, 0, size, size), crop(image, right, 0, size, size), crop(image, 0, bottom, size, size),
          crop(image, right, bottom, size, size), center_crop(image, size)};
}

std::array<Image, 10> ten_crop(const Image& image, int size) {
  const std::array<Image, 5> first = five_crop(image, size);
  const std::array<Image, 5> second = five_crop(hflip(image), size);
  std::array<Image, 10> all;
  std::copy(first.begin(), first.end(), all.begin());
  std::copy(second.begin(), second.end(), all.begin() + 5);
  return all;
}

void write_normalized_chw(const Image& image, const Normalization& norm, float* out) {
  const size_t plane = static_cast<size_t>(image.width) * image.height;
  for (int c = 0; c < Image::kChannels; ++c) {
    const float mean = norm.mean[c], std = norm.std[c];
    float* dst = out + c * plane;
    // ToTensor divides by 255 in float32, Normalize subtracts and divides: the same three roundings.
    for (size_t i = 0; i < plane; ++i) dst[i] = (static_cast<float>(image.pixels[i * Image::kChannels + c]) / 255.0f - mean) / std;
  }
}

Tensor to_normalized_tensor(const Image& image, const Normalization& norm) {
  Tensor t = Tensor::empty({Image::kChannels, image.height, image.width});
  write_normalized_chw(image, norm, t.data());
  return t;
}

}  // namespace chex::data
