// PNG: chunk walk, then stb_image. stb is not hardened against hostile files, so it only sees files
// whose structure and declared size have been checked (by this file and image_decode.cpp).
#include <stb_image.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "chex/error.h"
#include "image_formats.h"

namespace chex::data::detail {
namespace {

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

struct StbFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

std::string stb_reason() {
  const char* reason = stbi_failure_reason();
  return reason ? reason : "unknown reason";
}

}  // namespace

bool is_png(std::span<const uint8_t> b) { return b.size() >= 8 && std::memcmp(b.data(), kPngSignature, 8) == 0; }

PngLayout check_png_structure(std::span<const uint8_t> b, const std::string& where) {
  CHEX_CHECK(b.size() >= 8 + 8 + 13 + 4, where, ": the PNG file is truncated (", b.size(), " bytes)");
  CHEX_CHECK(be32(&b[8]) == 13 && std::memcmp(&b[12], "IHDR", 4) == 0, where,
             ": not a valid PNG file (no IHDR chunk after the signature)");
  const PngLayout layout{be32(&b[16]), be32(&b[20]), b[24], b[25]};
  size_t pos = 8;
  while (true) {
    CHEX_CHECK(pos + 8 <= b.size(), where, ": the PNG file is truncated (it ends after ", pos,
               " bytes without an IEND chunk)");
    const uint64_t length = be32(&b[pos]);
    const std::string type(reinterpret_cast<const char*>(&b[pos + 4]), 4);
    CHEX_CHECK(length <= 0x7fffffffu, where, ": corrupt PNG chunk length at offset ", pos);
    CHEX_CHECK(pos + 12 + length <= b.size(), where, ": the PNG file is truncated (a chunk at offset ", pos, " needs ",
               length + 12, " bytes, ", b.size() - pos, " remain)");
    if (type == "IEND") return layout;
    pos += 12 + length;
  }
}

Image decode_png(std::span<const uint8_t> bytes, const std::string& where, const PngLayout& layout, int& channels) {
  const int length = static_cast<int>(bytes.size());  // the caller checked it fits
  const int64_t pixels = int64_t{layout.width} * layout.height;
  int w = 0, h = 0, n = 0;
  // 16-bit samples are read as such only where PIL keeps them: grey (mode "I", clipped to 255).
  // Everywhere else PIL keeps the high byte, which is what stb's 8-bit conversion does too.
  if (layout.bit_depth == 16 && layout.color_type == 0) {
    std::unique_ptr<stbi_us, StbFree> decoded(stbi_load_16_from_memory(bytes.data(), length, &w, &h, &n, 0));
    CHEX_CHECK(decoded, where, ": cannot decode the PNG data (", stb_reason(), ")");
    CHEX_CHECK(w == static_cast<int>(layout.width) && h == static_cast<int>(layout.height) && n >= 1 && n <= 2, where,
               ": the decoded image (", w, "x", h, "x", n, ") differs from the header's");
    Image image = make_image(w, h);
    const stbi_us* in = decoded.get();
    for (int64_t i = 0; i < pixels; ++i)
      std::fill_n(&image.pixels[i * 3], 3, static_cast<uint8_t>(std::min<int>(in[i * n], 255)));
    channels = n;
    return image;
  }
  std::unique_ptr<stbi_uc, StbFree> decoded(stbi_load_from_memory(bytes.data(), length, &w, &h, &n, 0));
  CHEX_CHECK(decoded, where, ": cannot decode the PNG data (", stb_reason(), ")");
  CHEX_CHECK(w == static_cast<int>(layout.width) && h == static_cast<int>(layout.height) && n >= 1 && n <= 4, where,
             ": the decoded image (", w, "x", h, "x", n, ") differs from the header's");
  Image image = make_image(w, h);
  const stbi_uc* in = decoded.get();
  uint8_t* out = image.pixels.data();
  if (n <= 2) {  // grey, grey + alpha (or grey with a tRNS chunk): replicate, drop alpha
    for (int64_t i = 0; i < pixels; ++i) std::fill_n(out + i * 3, 3, in[i * n]);
  } else {  // RGB, RGBA (palettes arrive expanded): drop alpha
    for (int64_t i = 0; i < pixels; ++i) std::copy_n(in + i * n, 3, out + i * 3);
  }
  channels = n;
  return image;
}

}  // namespace chex::data::detail
