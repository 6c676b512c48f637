#include "chex/dtype.h"

#include <bit>
#include <cmath>

#include "kernels/bfloat16.h"

namespace chex {

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ff;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    float value = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -value : value;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));  // inf/nan
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// The kernels' one bf16 rule (kernels/bfloat16.h), so that a tensor converted on any device, by
// the cast kernels, has these bits.
float bfloat16_to_float(uint16_t b) { return kernels::to_float(kernels::BFloat16{b}); }

uint16_t float_to_bfloat16(float f) { return kernels::to_bfloat16(f).bits; }

uint16_t float_to_half(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const float a = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00;
  if (a >= 65520.f) return sign | 0x7c00;  // rounds to infinity
  if (a < 6.103515625e-05f) {               // subnormal half: multiples of 2^-24
    return sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.f));
  }
  uint32_t m = bits & 0x7fffff;
  int32_t e = static_cast<int32_t>((bits >> 23) & 0xff) - 127 + 15;
  uint32_t half = (static_cast<uint32_t>(e) << 10) | (m >> 13);
  const uint32_t rest = m & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;  // may carry into the exponent: fine
  return sign | static_cast<uint16_t>(half);
}

}  // namespace chex
