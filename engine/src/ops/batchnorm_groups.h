#pragma once
// Sync and ghost batch norm (batchnorm_groups.cpp): training only, arguments already checked by
// batch_norm2d.
#include "chex/ops.h"

namespace chex::ops::detail {

Tensor sync_batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var, const BatchNormOptions& options);
Tensor ghost_batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                          const Tensor& running_var, const BatchNormOptions& options);

}  // namespace chex::ops::detail
