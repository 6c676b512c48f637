#pragma once
// CHEX_CUDA_CHECK and CHEX_CUDNN_CHECK (the base layer's chex/cuda_check.h), and the one stream of
// each device.
#include "chex/cuda_check.h"

namespace chex::cuda {
cudaStream_t stream(int device);  // the one stream of each device
}
