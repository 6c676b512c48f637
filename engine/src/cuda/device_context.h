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

// Makes `device` the calling thread's current device and returns its context.
const DeviceContext& context(int device);

// TF32 tensor-core math for convolutions and GEMMs: off unless the environment sets
// CHEX_CUDA_TF32=1 or set_tf32_allowed(true) was called (--precision tf32), so that CUDA results
// stay close to the CPU's and PyTorch's float32.
bool tf32_allowed();
// Process-wide, before the first device context exists (cuBLAS handles take their math mode when
// created, and chosen convolution algorithms are cached): an error after it.
void set_tf32_allowed(bool allowed);

}  // namespace chex::cuda
