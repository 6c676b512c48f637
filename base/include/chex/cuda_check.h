#pragma once
// Every CUDA runtime and cuDNN call is checked; the error names the statement, file and line. Part of
// the base layer, so that the engine's CUDA backend and the kernel benchmarks share one definition.
// (cuBLAS, which the engine opens at run time, has its check beside that loader.)
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <string_view>

#include "chex/error.h"

namespace chex::detail {
// "cudnnCreate(&handle)" -> "cudnnCreate": the call a failed status check names in its message (the
// whole statement, file and line go to the error's details).
inline std::string_view called_function(std::string_view statement) { return statement.substr(0, statement.find('(')); }
}  // namespace chex::detail

// One library status check: `statement` must give `ok`; otherwise chex::Error says which library
// call failed, with the status number and describe(status); its details name the statement, file
// and line.
#define CHEX_STATUS_CHECK(statement, ok, library, describe)                                                     \
  do {                                                                                                         \
    const auto chex_status_ = (statement);                                                                     \
    if (chex_status_ != (ok)) [[unlikely]]                                                                     \
      ::chex::detail::throw_error(                                                                             \
          #statement, __FILE__, __LINE__,                                                                      \
          ::chex::detail::concat(library " error ", static_cast<int>(chex_status_), " (", describe(chex_status_), \
                                 ") from ", ::chex::detail::called_function(#statement)));                    \
  } while (0)

#define CHEX_CUDA_CHECK(statement) CHEX_STATUS_CHECK(statement, cudaSuccess, "CUDA", cudaGetErrorString)
#define CHEX_CUDNN_CHECK(statement) CHEX_STATUS_CHECK(statement, CUDNN_STATUS_SUCCESS, "cuDNN", cudnnGetErrorString)
