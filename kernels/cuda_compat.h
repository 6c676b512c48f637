#pragma once
// The one header a kernel source (kernels/<op>.cu) includes. Under nvcc it is the CUDA runtime;
// under a host compiler it is the CPU emulator (kernels/emu/), so that the same source runs in
// tests on machines without a GPU.
//
// Writing a kernel that compiles both ways:
//   __global__ void scale(const float* x, float* y, float a, int n) {
//     CHEX_SHARED(float[256], tile);                 // not: __shared__ float tile[256];
//     CHEX_DYNAMIC_SHARED(float, extra);             // not: extern __shared__ float extra[];
//     ...
//   }
//   CHEX_LAUNCH(scale, grid, block, shared_bytes, stream, x, y, a, n);
//   CHEX_LAUNCH((scale_t<float, 4>), ...);           // templates with commas: in parentheses
// CHEX_LAUNCH is `kernel<<<grid, block, shared_bytes, stream>>>(args...)` plus an error check
// under nvcc; it throws chex::Error naming the kernel when the launch (or, emulated, the kernel)
// fails. chex::launch(name, kernel, ...) is the same without the macro.
// Emulated, shared memory is poisoned (0xFF bytes) at the start of every block. Keep inline PTX,
// cooperative groups and CUB device code out of kernels the emulator must run.
// bf16 storage: __nv_bfloat16 / __nv_bfloat162 and their conversions (__float2bfloat16_rn,
// __bfloat162float, __floats2bfloat162_rn, __bfloat1622float2, ...), from cuda_bf16.h under nvcc
// and kernels/emu/bfloat16.h here; compute in float (kernels/element_type.cuh).
#include <cstddef>
#include <type_traits>
#include <utility>

#include "chex/error.h"

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#define CHEX_SHARED(type, name) __shared__ ::std::type_identity_t<type> name
#define CHEX_DYNAMIC_SHARED(type, name)                               \
  extern __shared__ __align__(16) unsigned char chex_dynamic_shared_[]; \
  type* name = reinterpret_cast<type*>(chex_dynamic_shared_)

namespace chex {

template <typename... Params, typename... Args>
void launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t shared_bytes,
            cudaStream_t stream, Args&&... args) {
  kernel<<<grid, block, shared_bytes, stream>>>(std::forward<Args>(args)...);
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    throw Error(detail::concat("launch of kernel '", name, "' with grid (", grid.x, ",", grid.y, ",", grid.z,
                               "), block (", block.x, ",", block.y, ",", block.z, ") failed: ",
                               cudaGetErrorString(status)));
}

// Lets `kernel` use more than 48 KiB of dynamic shared memory.
template <typename... Params>
void set_max_dynamic_shared_bytes(void (*kernel)(Params...), std::size_t bytes) {
  const cudaError_t status =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (status != cudaSuccess)
    throw Error(detail::concat("cudaFuncSetAttribute(MaxDynamicSharedMemorySize, ", bytes,
                               ") failed: ", cudaGetErrorString(status)));
}

}  // namespace chex

#else
#include "kernels/emu/bfloat16.h"
#include "kernels/emu/device.h"
#include "kernels/emu/launch.h"

// A static __shared__ variable: storage from the block's shared arena, poisoned per block.
#define CHEX_SHARED(type, name)                                                  \
  static constinit ::chex::emu::detail::SharedSite chex_shared_site_##name{};    \
  auto& name = ::chex::emu::detail::shared_object<type>(chex_shared_site_##name)
#define CHEX_DYNAMIC_SHARED(type, name) \
  type* name = static_cast<type*>(::chex::emu::detail::dynamic_shared_storage())
#endif

#define CHEX_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  ::chex::launch(#kernel, kernel, grid, block, shared_bytes, stream __VA_OPT__(, ) __VA_ARGS__)
