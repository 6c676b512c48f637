#pragma once
// CUDA's bf16 storage types and conversions (cuda_bf16.h) for the emulator: the same names, sizes,
// alignments and bits, so that a kernel source stores bf16 the same way under nvcc and here.
// Rounding is CUDA's __float2bfloat16_rn: to nearest even, NaN to the canonical quiet NaN 0x7fff
// (kernels/bfloat16.h, which the CPU twins use too). Only storage and conversions: a kernel
// computes in float, so the emulated types have no arithmetic operators and no implicit
// conversions (nvcc's have some on sm_80+; using them would not compile here, which keeps kernels
// explicit about where they round).
#include <type_traits>

#include "kernels/bfloat16.h"
#include "kernels/emu/vector_types.h"

struct __nv_bfloat16 {
  unsigned short __x;
};
// A pair, x at the lower address (as CUDA's: .x is the "low" half).
struct alignas(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};

static_assert(sizeof(__nv_bfloat16) == 2 && alignof(__nv_bfloat16) == 2);
static_assert(sizeof(__nv_bfloat162) == 4 && alignof(__nv_bfloat162) == 4);
static_assert(std::is_trivial_v<__nv_bfloat16> && std::is_trivial_v<__nv_bfloat162>,
              "shared memory holds trivial types only");

inline __nv_bfloat16 __float2bfloat16_rn(float value) { return {chex::kernels::to_bfloat16(value).bits}; }
inline __nv_bfloat16 __float2bfloat16(float value) { return __float2bfloat16_rn(value); }
inline float __bfloat162float(__nv_bfloat16 value) {
  return chex::kernels::to_float(chex::kernels::BFloat16{value.__x});
}

inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 value) { return value.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short bits) { return {bits}; }

inline __nv_bfloat162 __floats2bfloat162_rn(float low, float high) {
  return {__float2bfloat16_rn(low), __float2bfloat16_rn(high)};
}
inline __nv_bfloat162 __float22bfloat162_rn(float2 value) { return __floats2bfloat162_rn(value.x, value.y); }
inline float2 __bfloat1622float2(__nv_bfloat162 value) {
  return make_float2(__bfloat162float(value.x), __bfloat162float(value.y));
}
inline float __low2float(__nv_bfloat162 value) { return __bfloat162float(value.x); }
inline float __high2float(__nv_bfloat162 value) { return __bfloat162float(value.y); }
inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 low, __nv_bfloat16 high) { return {low, high}; }
