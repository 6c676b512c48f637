#pragma once
// Minimal PNG and JPEG byte streams for tests: a PNG encoder with uncompressed (stored) deflate
// blocks, and a tiny baseline JPEG, so that tests can make valid files and then break them on purpose.
#include <cstdint>
#include <string>
#include <vector>

namespace chex::testing {

using Bytes = std::vector<uint8_t>;

inline void put_be32(Bytes& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

inline uint32_t crc32(const uint8_t* data, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= data[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

inline void put_chunk(Bytes& out, const char* type, const Bytes& data) {
  put_be32(out, static_cast<uint32_t>(data.size()));
  Bytes body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  out.insert(out.end(), body.begin(), body.end());
  put_be32(out, crc32(body.data(), body.size()));
}

// Samples row by row (big-endian pairs when bit_depth is 16), without the filter bytes.
// `declared_width`/`declared_height` let a test write a header that lies about the size.
inline Bytes make_png(uint32_t width, uint32_t height, int bit_depth, int color_type, const Bytes& samples,
                      uint32_t declared_width = 0, uint32_t declared_height = 0) {
  Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr;
  put_be32(ihdr, declared_width ? declared_width : width);
  put_be32(ihdr, declared_height ? declared_height : height);
  ihdr.insert(ihdr.end(), {static_cast<uint8_t>(bit_depth), static_cast<uint8_t>(color_type), 0, 0, 0});
  put_chunk(out, "IHDR", ihdr);
  // zlib stream: header, stored blocks of at most 65535 bytes, Adler-32.
  const size_t row_bytes = height ? samples.size() / height : 0;
  Bytes raw;
  for (uint32_t y = 0; y < height; ++y) {
    raw.push_back(0);  // filter: none
    raw.insert(raw.end(), samples.begin() + y * row_bytes, samples.begin() + (y + 1) * row_bytes);
  }
  Bytes z = {0x78, 0x01};
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(raw.size() - pos, 65535);
    z.push_back(pos + n == raw.size() ? 1 : 0);
    z.push_back(static_cast<uint8_t>(n));
    z.push_back(static_cast<uint8_t>(n >> 8));
    z.push_back(static_cast<uint8_t>(~n));
    z.push_back(static_cast<uint8_t>(~n >> 8));
    z.insert(z.end(), raw.begin() + pos, raw.begin() + pos + n);
    pos += n;
  } while (pos < raw.size());
  uint32_t a = 1, b = 0;
  for (uint8_t v : raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  put_be32(z, (b << 16) | a);
  put_chunk(out, "IDAT", z);
  put_chunk(out, "IEND", {});
  return out;
}

}  // namespace chex::testing
