#pragma once
// CHEX_CUDA_CHECK and CHEX_CUDNN_CHECK (the base layer's chex/cuda_check.h), and the one stream of
// each device, and making a device current.
#include "chex/cuda_check.h"

namespace chex::cuda {
cudaStream_t stream(int device);  // the one stream of each device
// Makes `device` current on the calling thread; cudaSetDevice only when another one is current
// (cudaGetDevice reads the runtime's thread state, cudaSetDevice may reach the driver).
void make_current(int device);
}
