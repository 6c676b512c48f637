#pragma once
// One image's way into a training batch, the same steps as chex predict's default input (see
// models/chexnet_input.h): decode, resize to size x size with the Pillow-exact bilinear filter, then
// (training only) a horizontal flip, then ToTensor + ImageNet Normalize into float CHW.
#include <string>

#include "chex/data/image.h"

namespace chex::data {

// Decoded and resized to size x size: the pixels the image cache stores.
Image load_resized(const std::string& path, int size);

// Flip (if asked) and normalise `resized` into out[3 * height * width], channel-major.
void write_training_input(const Image& resized, bool flip, float* out);

}  // namespace chex::data
