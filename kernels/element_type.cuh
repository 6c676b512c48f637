#pragma once
// The element types kernels store, float and bf16, behind one device interface, so that a kernel is
// written once as a template on its element type: it loads with to_float(v), computes in float (or
// double), and stores from_float<T>(v), so bf16 rounds once, on the store, as in the CPU twins
// (kernels/bfloat16.h). Launchers receive bf16 buffers as BFloat16* and hand them to kernels as
// __nv_bfloat16* (device_pointer): the same two bytes.
#include <cstdint>
#include <type_traits>

#include "kernels/bfloat16.h"
#include "kernels/cuda_compat.h"
#include "kernels/gpu.h"

namespace chex::kernels::CHEX_GPU_NAMESPACE {

static_assert(sizeof(__nv_bfloat16) == sizeof(BFloat16) && alignof(__nv_bfloat16) == alignof(BFloat16));

// The device type behind an interface element type: float is itself, BFloat16 is __nv_bfloat16.
template <typename T>
struct DeviceElementOf {
  using type = T;
};
template <>
struct DeviceElementOf<BFloat16> {
  using type = __nv_bfloat16;
};
template <typename T>
struct DeviceElementOf<const T> {
  using type = const typename DeviceElementOf<T>::type;
};
template <typename T>
using DeviceElement = typename DeviceElementOf<T>::type;

template <typename T>
__host__ __device__ __forceinline__ DeviceElement<T>* device_pointer(T* p) {
  return reinterpret_cast<DeviceElement<T>*>(p);
}

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, __nv_bfloat16>, "kernels store float or bf16");
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else {
    return __float2bfloat16_rn(v);
  }
}

// kSize elements of T moved as one aligned vector (a 16-byte load or store on the GPU where kSize
// * sizeof(T) is 16): four floats, or eight bf16.
template <typename T, int kCount = 16 / static_cast<int>(sizeof(T))>
struct alignas(kCount * sizeof(T)) Vector {
  static constexpr int kSize = kCount;
  T v[kCount];
};

// Whether p may be accessed as Vector<T, kCount>.
template <typename T, int kCount = 16 / static_cast<int>(sizeof(T))>
__host__ __device__ __forceinline__ bool vector_aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % alignof(Vector<T, kCount>) == 0;
}

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
