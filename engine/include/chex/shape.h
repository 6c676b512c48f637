#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace chex {

// Sizes and strides are counted in elements. NCHW is the layout of image tensors.
using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[16, 64, 56, 56]"
Shape contiguous_strides(const Shape& shape);

}  // namespace chex
