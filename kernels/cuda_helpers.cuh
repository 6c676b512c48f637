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

// Division of non-negative int32 values by a divisor fixed at launch, as a multiply-high, an add
// and a shift instead of a division (about 20 instructions on a GPU): the round-up method of
// Granlund and Montgomery, exact for every numerator and divisor in [0, 2^31) (and divisor >= 1),
// which tests/emu/test_kernel_fast_divider.cpp checks. Built on the host, passed by value.
struct FastDivider {
  uint32_t divisor = 1, magic = 1, shift = 0;

  FastDivider() = default;
  explicit FastDivider(int32_t d) : divisor(static_cast<uint32_t>(d)) {
    CHEX_CHECK(d >= 1, "FastDivider: division by ", d);
    while ((uint32_t{1} << shift) < divisor) ++shift;  // shift = ceil(log2(d)) <= 31
    const uint64_t numerator = (uint64_t{1} << 32) * ((uint64_t{1} << shift) - divisor);
    magic = static_cast<uint32_t>(numerator / divisor + 1);
  }

  __host__ __device__ __forceinline__ int32_t div(int32_t n) const {
    const auto u = static_cast<uint32_t>(n);
    const auto high = static_cast<uint32_t>((static_cast<uint64_t>(u) * magic) >> 32);
    return static_cast<int32_t>((high + u) >> shift);  // no overflow: high <= u < 2^31
  }
  // n = quotient * divisor + remainder.
  __host__ __device__ __forceinline__ void divmod(int32_t n, int32_t& quotient, int32_t& remainder) const {
    quotient = div(n);
    remainder = n - quotient * static_cast<int32_t>(divisor);
  }
};

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
