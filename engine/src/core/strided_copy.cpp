#include "strided_copy.h"

#include <cstring>
#include <vector>

namespace chex::detail {
namespace {

// Calls row(dst_offset, src_offset) for every innermost row, in order. Offsets in elements.
template <typename Row>
void for_each_row(const Shape& shape, const Shape& a_strides, const Shape& b_strides, Row row) {
  const size_t rank = shape.size();
  for (int64_t s : shape)
    if (s == 0) return;
  if (rank <= 1) {
    row(0, 0);
    return;
  }
  std::vector<int64_t> index(rank - 1, 0);
  int64_t a = 0, b = 0;
  while (true) {
    row(a, b);
    size_t d = rank - 1;
    while (d-- > 0) {
      if (++index[d] < shape[d]) {
        a += a_strides[d];
        b += b_strides[d];
        break;
      }
      a -= a_strides[d] * (shape[d] - 1);
      b -= b_strides[d] * (shape[d] - 1);
      index[d] = 0;
    }
    if (d == static_cast<size_t>(-1)) return;
  }
}

}  // namespace

void strided_copy(char* dst, const Shape& dst_strides, const char* src, const Shape& src_strides, const Shape& shape,
                  size_t element_size) {
  if (shape.empty()) {
    std::memcpy(dst, src, element_size);
    return;
  }
  const int64_t n = shape.back();
  const int64_t ds = dst_strides.back(), ss = src_strides.back();
  for_each_row(shape, dst_strides, src_strides, [&](int64_t a, int64_t b) {
    char* d = dst + a * static_cast<int64_t>(element_size);
    const char* s = src + b * static_cast<int64_t>(element_size);
    if ((ds == 1 && ss == 1) || n == 1) {
      std::memcpy(d, s, n * element_size);
    } else {
      for (int64_t i = 0; i < n; ++i)
        std::memcpy(d + i * ds * static_cast<int64_t>(element_size), s + i * ss * static_cast<int64_t>(element_size),
                    element_size);
    }
  });
}

void strided_fill(float* dst, const Shape& shape, const Shape& strides, float value) {
  if (shape.empty()) {
    *dst = value;
    return;
  }
  const int64_t n = shape.back();
  const int64_t st = strides.back();
  for_each_row(shape, strides, strides, [&](int64_t a, int64_t) {
    float* d = dst + a;
    for (int64_t i = 0; i < n; ++i) d[i * st] = value;
  });
}

}  // namespace chex::detail
