#pragma once
// Every CUDA runtime and cuDNN call is checked; the error names the statement, file and line. Part of
// the base layer, so that the engine's CUDA backend and the kernel benchmarks share one definition.
// (cuBLAS, which the engine opens at run time, has its check beside that loader.)
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "chex/error.h"

#define CHEX_CUDA_CHECK(statement)                                                              \
  do {                                                                                          \
    const cudaError_t chex_status_ = (statement);                                               \
    if (chex_status_ != cudaSuccess) [[unlikely]]                                               \
      ::chex::detail::throw_error(#statement, __FILE__, __LINE__,                               \
                                  ::chex::detail::concat("CUDA error ", static_cast<int>(chex_status_), \
                                                         " (", cudaGetErrorString(chex_status_), ")")); \
  } while (0)

#define CHEX_CUDNN_CHECK(statement)                                                                   \
  do {                                                                                                \
    const cudnnStatus_t chex_status_ = (statement);                                                   \
    if (chex_status_ != CUDNN_STATUS_SUCCESS) [[unlikely]]                                            \
      ::chex::detail::throw_error(#statement, __FILE__, __LINE__,                                     \
                                  ::chex::detail::concat("cuDNN error ", static_cast<int>(chex_status_), \
                                                         " (", cudnnGetErrorString(chex_status_), ")")); \
  } while (0)
