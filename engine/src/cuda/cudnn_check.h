#pragma once
// Every cuDNN and cuBLAS call is checked; the error names the statement, file and line.
#include <cublas_v2.h>
#include <cudnn.h>

#include "cublas_library.h"

#include "chex/error.h"

#define CHEX_CUDNN_CHECK(statement)                                                                   \
  do {                                                                                                \
    const cudnnStatus_t chex_status_ = (statement);                                                   \
    if (chex_status_ != CUDNN_STATUS_SUCCESS) [[unlikely]]                                            \
      ::chex::detail::throw_error(#statement, __FILE__, __LINE__,                                     \
                                  ::chex::detail::concat("cuDNN error ", static_cast<int>(chex_status_), \
                                                         " (", cudnnGetErrorString(chex_status_), ")")); \
  } while (0)

#define CHEX_CUBLAS_CHECK(statement)                                                                   \
  do {                                                                                                 \
    const cublasStatus_t chex_status_ = (statement);                                                   \
    if (chex_status_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                                            \
      ::chex::detail::throw_error(#statement, __FILE__, __LINE__,                                      \
                                  ::chex::detail::concat("cuBLAS error ", static_cast<int>(chex_status_), \
                                                         " (", ::chex::cuda::cublas().status_string(chex_status_), ")")); \
  } while (0)
