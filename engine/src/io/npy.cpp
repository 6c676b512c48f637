#include "chex/io/npy.h"

#include <bit>
#include <cstring>

#include "chex/error.h"
#include "chex/io/atomic_file.h"

namespace chex::io {

std::string encode_npy(std::span<const float> values, const std::vector<int64_t>& shape) {
  static_assert(std::endian::native == std::endian::little, "the .npy writer stores the host's floats as '<f4'");
  int64_t count = 1;
  std::string dims;
  for (const int64_t d : shape) {
    CHEX_CHECK(d >= 0, "encode_npy: negative dimension ", d);
    count *= d;
    dims += std::to_string(d) + ", ";
  }
  CHEX_CHECK(count == static_cast<int64_t>(values.size()), "encode_npy: ", values.size(), " values for ", count);
  // Python's tuple syntax: (7,) for one dimension, (2, 3) for more, () for a scalar.
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  else if (shape.size() == 1) dims.resize(dims.size() - 1);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t preamble = 10;  // magic (6), version (2), header length (2)
  const size_t padded = (preamble + header.size() + 1 + 63) / 64 * 64;
  header.append(padded - preamble - header.size() - 1, ' ');
  header += '\n';
  CHEX_CHECK(header.size() <= 65535, "encode_npy: header too long for version 1.0");

  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  const size_t data_at = out.size();
  out.resize(data_at + values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(out.data() + data_at, values.data(), values.size() * sizeof(float));
  return out;
}

void write_npy_atomically(const std::string& path, std::span<const float> values, const std::vector<int64_t>& shape) {
  const std::string bytes = encode_npy(values, shape);
  write_file_atomically(path,
                        [&](std::ostream& os) { os.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

}  // namespace chex::io
