#pragma once
// PNG encoding (stb_image_write) for the images chex writes: demo radiographs, CAM overlays.
#include <cstdint>
#include <span>
#include <string>

namespace chex::io {

// The PNG file of an 8-bit image, rows top to bottom, `channels` (1 grey, 3 RGB, 4 RGBA) interleaved
// samples a pixel. Throws chex::Error (naming `origin`) when the sizes disagree or encoding fails.
std::string encode_png(int width, int height, int channels, std::span<const uint8_t> pixels,
                       const std::string& origin);
// encode_png written to `path` with io::write_file_atomically.
void write_png_atomically(const std::string& path, int width, int height, int channels,
                          std::span<const uint8_t> pixels);

}  // namespace chex::io
