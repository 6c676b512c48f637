#include "chex/data/training_input.h"

#include "chex/data/resize.h"
#include "chex/data/transforms.h"
#include "chex/error.h"

namespace chex::data {

Image load_resized(const std::string& path, int size) {
  CHEX_CHECK(size > 0, "the image size must be positive, not ", size);
  return resize_bilinear(load_image(path), size, size);
}

void write_training_input(const Image& resized, bool flip, float* out) {
  if (flip)
    write_normalized_chw(hflip(resized), kImageNetNormalization, out);
  else
    write_normalized_chw(resized, kImageNetNormalization, out);
}

}  // namespace chex::data
