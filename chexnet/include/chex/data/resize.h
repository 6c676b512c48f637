#pragma once
// Resizing exactly as torchvision's Resize does on a PIL image, i.e. as Pillow 9's
// Image.resize(size, Image.BILINEAR): antialiased (the filter's support grows with the reduction
// factor), two separable passes — horizontal into an 8-bit intermediate, then vertical — with
// 22-bit fixed-point coefficients, rounding and clipping to 0..255 after each pass. The 8-bit
// results are identical to Pillow's, not merely close: a DenseNet turns a fraction of a grey level
// into thousandths of probability.
#include <utility>

#include "chex/data/image.h"

namespace chex::data {

// PIL's Image.resize((width, height), Image.BILINEAR).
Image resize_bilinear(const Image& image, int width, int height);

// torchvision's Resize(size) with one int: the shorter side becomes `size`, the other
// int(size * longer / shorter) (truncated, as torchvision 0.14 computes it). Returns {width, height}.
std::pair<int, int> shorter_side_size(int width, int height, int size);
Image resize_shorter_side(const Image& image, int size);

}  // namespace chex::data
