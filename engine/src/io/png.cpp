#include "chex/io/png.h"

#include <stb_image_write.h>

#include "chex/error.h"
#include "chex/io/atomic_file.h"

namespace chex::io {

std::string encode_png(int width, int height, int channels, std::span<const uint8_t> pixels,
                       const std::string& origin) {
  CHEX_CHECK(width > 0 && height > 0 && channels >= 1 && channels <= 4 &&
                 pixels.size() == static_cast<size_t>(width) * height * channels,
             "cannot encode '", origin, "' as PNG: ", pixels.size(), " samples for ", width, " x ", height, " x ",
             channels);
  std::string encoded;
  const auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  CHEX_CHECK(stbi_write_png_to_func(append, &encoded, width, height, channels, pixels.data(), width * channels) != 0,
             "cannot encode '", origin, "' as PNG");
  return encoded;
}

void write_png_atomically(const std::string& path, int width, int height, int channels,
                          std::span<const uint8_t> pixels) {
  const std::string encoded = encode_png(width, height, channels, pixels, path);
  write_file_atomically(
      path, [&](std::ostream& os) { os.write(encoded.data(), static_cast<std::streamsize>(encoded.size())); });
}

}  // namespace chex::io
