#pragma once
// Every cuBLAS call is checked; the error names the statement, file and line (CHEX_CUDNN_CHECK is
// in the base layer's chex/cuda_check.h).
#include <cublas_v2.h>

#include "cublas_library.h"

#include "chex/cuda_check.h"

#define CHEX_CUBLAS_CHECK(statement) \
  CHEX_STATUS_CHECK(statement, CUBLAS_STATUS_SUCCESS, "cuBLAS", ::chex::cuda::cublas().status_string)
