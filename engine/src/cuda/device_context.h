#pragma once
// What every CUDA op needs for one device: its stream, and a cuDNN and a cuBLAS handle bound to
// that stream. Handles are created on first use and live for the whole process (destroying them
// at exit can race the driver's own teardown).
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

namespace chex::cuda {

struct DeviceContext {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;
  cublasHandle_t cublas = nullptr;
};

// Makes `device` the calling thread's current device and returns its context. Once created, a
// context is found without a lock, and cudaSetDevice is called only when another device is current.
const DeviceContext& context(int device);

// Whether any context exists yet: the TF32 setting (chex/precision.h) is fixed from then on, since
// cuBLAS handles take their math mode when created.
bool any_context_created();

}  // namespace chex::cuda
