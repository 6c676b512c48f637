#pragma once
// Every cuBLAS call is checked; the error names the statement, file and line (CHEX_CUDNN_CHECK is
// in the base layer's chex/cuda_check.h).
#include <cublas_v2.h>

#include "cublas_library.h"

#include "chex/cuda_check.h"

#define CHEX_CUBLAS_CHECK(statement)                                                                   \
  do {                                                                                                 \
    const cublasStatus_t chex_status_ = (statement);                                                   \
    if (chex_status_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                                            \
      ::chex::detail::throw_error(#statement, __FILE__, __LINE__,                                      \
                                  ::chex::detail::concat("cuBLAS error ", static_cast<int>(chex_status_), \
                                                         " (", ::chex::cuda::cublas().status_string(chex_status_), ")")); \
  } while (0)
