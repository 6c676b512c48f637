#pragma once
// Element-by-element copy and fill over arbitrary strides on the host: the slow general path behind
// contiguous(), narrow().copy_() and friends. Rows that are densely packed are copied with memcpy.
#include <cstddef>

#include "chex/shape.h"

namespace chex::detail {

void strided_copy(char* dst, const Shape& dst_strides, const char* src, const Shape& src_strides, const Shape& shape,
                  size_t element_size);
void strided_fill(float* dst, const Shape& shape, const Shape& strides, float value);

}  // namespace chex::detail
