#pragma once
#include "chex/tensor.h"

namespace chex {
// Adds `grad` into the leaf's .grad (allocating it on first use). Not recorded.
void accumulate_leaf_grad(const Tensor& leaf, const Tensor& grad);
}

namespace chex::ops::detail {
// dst += src, in place, not recorded. Shapes must match.
void add_into(const Tensor& dst, const Tensor& src);
}  // namespace chex::ops::detail
