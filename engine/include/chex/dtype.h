#pragma once
// Element types. Compute is float32 today; F16/BF16 exist as storage types (weights load from them)
// so that reduced-precision storage can be added without changing the tensor's shape of the API.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace chex {

enum class DType : uint8_t { F32, F16, BF16 };

constexpr size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }
constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
  }
  return "?";
}

// Conversions used when loading half-precision weights.
float half_to_float(uint16_t h);
float bfloat16_to_float(uint16_t b);
uint16_t float_to_half(float f);       // round to nearest even
uint16_t float_to_bfloat16(float f);   // round to nearest even; NaN becomes the quiet NaN 0x7fff

}  // namespace chex
