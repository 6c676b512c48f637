#pragma once
// Device helpers that several kernel sources (kernels/<op>.cu) use, written once. Every kernel
// source includes this header after kernels/cuda_compat.h; like the rest of a kernel source it
// compiles under nvcc (namespace chex::kernels::cuda) and against the emulator (chex::kernels::emu).
#include <cstdint>

#include "kernels/cuda_compat.h"
#include "kernels/gpu.h"

namespace chex::kernels::CHEX_GPU_NAMESPACE {

inline constexpr unsigned kFullMask = 0xffffffffu;  // every lane of a warp

// Sum over the warp in a fixed tree; valid in lane 0.
__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(kFullMask, v, offset);
  return v;
}

// Whether p may be read or written as float4; launchers test it on the host to pick a kernel.
__host__ __device__ __forceinline__ bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

__device__ __forceinline__ float relu(float v) { return v < 0.f ? 0.f : v; }  // NaN passes, as in PyTorch

// A grid-stride loop over a 1-D grid: this thread's first index and the step (the grid's thread
// count), in Index (int32 where the caller has checked that the sizes fit, for cheaper arithmetic).
template <typename Index = int64_t>
__device__ __forceinline__ Index first_index() {
  return static_cast<Index>(blockIdx.x) * static_cast<Index>(blockDim.x) + static_cast<Index>(threadIdx.x);
}
template <typename Index = int64_t>
__device__ __forceinline__ Index grid_threads() {
  return static_cast<Index>(gridDim.x) * static_cast<Index>(blockDim.x);
}

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
