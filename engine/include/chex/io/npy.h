#pragma once
// NumPy's .npy format (version 1.0) for float32 arrays, so that research code reads chex's outputs
// with numpy.load: the magic "\x93NUMPY", version 1 0, a little-endian uint16 header length, a
// Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (...), } padded with spaces
// to a multiple of 64 bytes and ending in '\n', then the values in C order, little-endian.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace chex::io {

// The bytes of a .npy file holding `values` with `shape` (their product must be values.size()).
std::string encode_npy(std::span<const float> values, const std::vector<int64_t>& shape);
// encode_npy written to `path` with io::write_file_atomically.
void write_npy_atomically(const std::string& path, std::span<const float> values, const std::vector<int64_t>& shape);

}  // namespace chex::io
