#pragma once
// bf16 (bfloat16: fp32's sign and 8-bit exponent, 7 stored mantissa bits) as kernels store it.
// Kernel interfaces pass bf16 buffers as BFloat16* on both backends: a CPU twin reads and writes
// them through the conversions below, a GPU kernel as CUDA's __nv_bfloat16 (the same two bytes;
// kernels/element_type.cuh). One rounding rule everywhere, CUDA's __float2bfloat16_rn: to nearest,
// ties to even; infinities stay; a finite value past the largest bf16 (3.3895e38) becomes infinity;
// a NaN becomes the canonical quiet NaN 0x7fff (its sign and payload are dropped).
//
// Twins written once for float and bf16 take the element type T as a template parameter, load with
// to_float(v), compute in float (or double) and store from_float<T>(v): bf16 rounds once, on the
// store, as the GPU kernels do.
#include <bit>
#include <cstdint>
#include <type_traits>

namespace chex::kernels {

struct BFloat16 {
  uint16_t bits;
};

inline constexpr uint16_t kBFloat16CanonicalNaN = 0x7fff;

// Without branches, so that loops over it vectorise. Adding 0x7fff plus the lowest kept bit carries
// into the kept bits exactly when the dropped half is above halfway, or halfway with the kept part
// odd; a carry out of the mantissa steps the exponent, which is the correct rounding too.
constexpr BFloat16 to_bfloat16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
  return {static_cast<uint16_t>(nan ? kBFloat16CanonicalNaN : rounded)};
}

// Exact: every bf16 is a float.
constexpr float to_float(BFloat16 value) { return std::bit_cast<float>(static_cast<uint32_t>(value.bits) << 16); }
constexpr float to_float(float value) { return value; }

template <typename T>
constexpr T from_float(float value) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, BFloat16>, "kernels store float or BFloat16");
  if constexpr (std::is_same_v<T, float>) {
    return value;
  } else {
    return to_bfloat16(value);
  }
}

}  // namespace chex::kernels
