#include "fuzz/fuzz_one_input.h"

#include <span>
#include <vector>

#include "chex/data/image.h"
#include "chex/data/resize.h"
#include "chex/data/transforms.h"
#include "chex/error.h"
#include "chex/io/safetensors.h"

namespace chex::fuzz {

Outcome safetensors_one_input(const uint8_t* data, size_t size) {
  const std::vector<char> bytes(data, data + size);
  try {
    io::parse_safetensors(bytes, "fuzz input");
    return Outcome::Parsed;
  } catch (const Error&) {
    return Outcome::Rejected;
  }
}

Outcome image_one_input(const uint8_t* data, size_t size) {
  try {
    const data::Image image = data::decode_image(std::span<const uint8_t>(data, size), "fuzz input");
    data::to_normalized_tensor(data::resize_bilinear(image, 224, 224));
    return Outcome::Parsed;
  } catch (const Error&) {
    return Outcome::Rejected;
  }
}

Outcome dicom_one_input(const uint8_t* data, size_t size) {
  std::vector<uint8_t> file(128, 0);
  file.insert(file.end(), {'D', 'I', 'C', 'M'});
  file.insert(file.end(), data, data + size);
  return image_one_input(file.data(), file.size());
}

}  // namespace chex::fuzz
