#pragma once
// torchvision's PIL-image transforms that chest X-ray pipelines use after Resize: crops, flips,
// TenCrop, and ToTensor + Normalize into float CHW.
#include <array>

#include "chex/data/image.h"
#include "chex/tensor.h"

namespace chex::data {

// The rectangle [left, left + width) x [top, top + height), which must lie inside the image.
Image crop(const Image& image, int left, int top, int width, int height);
// Mirrored left to right (torchvision's hflip).
Image hflip(const Image& image);
// torchvision's CenterCrop offsets: int(round((size - crop) / 2.0)), Python's round (half to even).
Image center_crop(const Image& image, int size);
// torchvision's FiveCrop(size): top-left, top-right, bottom-left, bottom-right, centre.
std::array<Image, 5> five_crop(const Image& image, int size);
// torchvision's TenCrop(size): the five crops, then the five crops of the mirrored image.
std::array<Image, 10> ten_crop(const Image& image, int size);

struct Normalization {
  std::array<float, 3> mean;
  std::array<float, 3> std;
};
// The ImageNet statistics every torchvision model (and CheXNet) was trained with.
inline constexpr Normalization kImageNetNormalization{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};

// ToTensor + Normalize: out[c][y][x] = (pixel / 255 - mean[c]) / std[c] in float32, computed as
// torchvision computes it (so the values agree to the last bit). `out` holds 3 * height * width floats.
void write_normalized_chw(const Image& image, const Normalization& norm, float* out);
// The same as a new tensor [3, height, width] on the CPU.
Tensor to_normalized_tensor(const Image& image, const Normalization& norm = kImageNetNormalization);

}  // namespace chex::data
