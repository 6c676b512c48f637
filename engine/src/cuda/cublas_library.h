#pragma once
// cuBLAS, opened on first use rather than linked. Loading libcublas.so and the libcublasLt.so it
// depends on costs a large share of a CPU-only process's resident memory at start (relocations and
// static set-up; docs/performance.md has the figure), which every CPU-only run of a
// program linked to chex would pay. Only the functions chex
// calls are resolved; the types come from the toolkit's header.
#include <cublas_v2.h>

namespace chex::cuda {

struct CublasLibrary {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetPointerMode_v2) set_pointer_mode = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};

// Opens cuBLAS on the first call (thread-safe); throws naming the library and the fix when it
// cannot be loaded or lacks a function.
const CublasLibrary& cublas();

}  // namespace chex::cuda
