#pragma once
// Every CUDA runtime call is checked; the error names the statement, file and line.
#include <cuda_runtime_api.h>

#include "chex/error.h"

namespace chex::cuda {
cudaStream_t stream(int device);  // the one stream of each device
}

#define CHEX_CUDA_CHECK(statement)                                                              \
  do {                                                                                          \
    const cudaError_t chex_status_ = (statement);                                               \
    if (chex_status_ != cudaSuccess) [[unlikely]]                                               \
      ::chex::detail::throw_error(#statement, __FILE__, __LINE__,                               \
                                  ::chex::detail::concat("CUDA error ", static_cast<int>(chex_status_), \
                                                         " (", cudaGetErrorString(chex_status_), ")")); \
  } while (0)
