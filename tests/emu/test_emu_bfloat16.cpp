// The emulator's bf16 (kernels/emu/bfloat16.h: CUDA's __nv_bfloat16 and its conversions) and the
// twins' rounding (kernels/bfloat16.h, the same function) against a reference written here from the
// definition of the format, by value rather than by bits: a bf16 is a float with 8 significant
// bits, so a float rounds to one of the two multiples of its bf16 quantum around it, whichever is
// nearer, the even multiple on a tie; past the largest bf16 by half a quantum or more, to infinity.
// Every bf16 is checked (decoding and the round trip), and a float set of every bf16's halfway
// points and their neighbours (ties at every exponent: normal, subnormal, the largest), the edges
// (zeros, infinities, NaNs, max, min, subnormals) and a million random bit patterns.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/emu/bfloat16.h"

namespace {

// The value of bf16 bits, decoded from the format's definition: sign, 8-bit exponent (bias 127),
// 7-bit fraction; exponent 0 is subnormal (fraction * 2^-133), 255 is infinity or NaN.
double decode_reference(uint16_t bits) {
  const int sign = bits >> 15, exponent = (bits >> 7) & 0xff, fraction = bits & 0x7f;
  double magnitude;
  if (exponent == 255) {
    magnitude = fraction == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  } else if (exponent == 0) {
    magnitude = std::ldexp(static_cast<double>(fraction), -133);
  } else {
    magnitude = std::ldexp(1.0 + fraction / 128.0, exponent - 127);
  }
  return sign ? -magnitude : magnitude;
}

// The bf16 value nearest to a finite or infinite (not NaN) float, ties to the even multiple of the
// quantum; +-infinity past the largest finite bf16. Arithmetic in double, which holds every float
// and every midpoint exactly.
double round_reference(float value) {
  const double v = value;
  if (std::isinf(v) || v == 0) return v;
  const double a = std::fabs(v);
  int exponent;
  std::frexp(a, &exponent);  // a = m * 2^exponent, m in [0.5, 1)
  // 8 significant bits: the quantum is 2^(e-8) for a in [2^(e-1), 2^e), and never finer than the
  // subnormal spacing 2^-133.
  const double quantum = std::ldexp(1.0, std::max(exponent - 8, -133));
  const double below = std::floor(a / quantum) * quantum, above = below + quantum;
  double nearest;
  if (a - below < above - a) {
    nearest = below;
  } else if (above - a < a - below) {
    nearest = above;
  } else {
    nearest = std::fmod(below / quantum, 2.0) == 0 ? below : above;
  }
  const double largest = std::ldexp(255.0 / 128.0, 127);  // 0x7f7f
  if (nearest > largest) nearest = std::numeric_limits<double>::infinity();
  return v < 0 ? -nearest : nearest;
}

bool is_quiet_nan(uint16_t bits) { return (bits & 0x7f80) == 0x7f80 && (bits & 0x0040) != 0; }

uint16_t emulated_bits(float value) { return __bfloat16_as_ushort(__float2bfloat16_rn(value)); }

// One float's rounding through both names against the reference: an empty string, or what is wrong.
// (Counted rather than asserted one by one: Catch's per-assertion cost would dominate 1.4 million
// checks.)
std::string rounding_error(float value) {
  const uint16_t bits = emulated_bits(value);
  std::ostringstream out;
  out << std::hex << "float 0x" << std::bit_cast<uint32_t>(value) << " -> bf16 0x" << bits << ": ";
  if (chex::kernels::to_bfloat16(value).bits != bits) return out.str() + "the twins' to_bfloat16 differs";
  if (std::isnan(value)) {
    // CUDA's canonical NaN, which is quiet.
    if (bits != chex::kernels::kBFloat16CanonicalNaN || !is_quiet_nan(bits)) return out.str() + "not 0x7fff";
    return {};
  }
  const double expected = round_reference(value), got = decode_reference(bits);
  if (got != expected || std::signbit(got) != std::signbit(value))  // -0 stays -0
    return out.str() + "the nearest (ties to even) is " + std::to_string(expected);
  return {};
}

// Checks every value; reports how many failed and the first failure.
void check_rounding(const std::vector<float>& values) {
  int64_t failures = 0;
  std::string first;
  for (const float value : values) {
    std::string error = rounding_error(value);
    if (error.empty()) continue;
    if (failures++ == 0) first = std::move(error);
  }
  INFO("first failure: " << first);
  CHECK(failures == 0);
}

}  // namespace

TEST_CASE("emulated __nv_bfloat16 has CUDA's size, alignment and layout", "[emu][bf16]") {
  STATIC_REQUIRE(sizeof(__nv_bfloat16) == 2);
  STATIC_REQUIRE(alignof(__nv_bfloat162) == 4);
  STATIC_REQUIRE(std::is_trivially_copyable_v<__nv_bfloat16>);
  const __nv_bfloat162 pair = __floats2bfloat162_rn(1.f, -2.f);
  uint16_t halves[2];
  std::memcpy(halves, &pair, sizeof(halves));
  CHECK(halves[0] == 0x3f80);  // low half, first in memory
  CHECK(halves[1] == 0xc000);
  CHECK(__low2float(pair) == 1.f);
  CHECK(__high2float(pair) == -2.f);
  const float2 both = __bfloat1622float2(__float22bfloat162_rn(make_float2(0.5f, 3.f)));
  CHECK(both.x == 0.5f);
  CHECK(both.y == 3.f);
  CHECK(__bfloat16_as_ushort(__halves2bfloat162(__ushort_as_bfloat16(7), __ushort_as_bfloat16(9)).y) == 9);
}

TEST_CASE("every bf16 widens exactly and round-trips through __float2bfloat16_rn", "[emu][bf16]") {
  int64_t failures = 0;
  uint32_t first = 0;
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const auto bits = static_cast<uint16_t>(b);
    const float widened = __bfloat162float(__ushort_as_bfloat16(bits));
    const double reference = decode_reference(bits);
    bool ok = std::bit_cast<uint32_t>(widened) == b << 16 &&  // the same bits, NaN payloads included
              std::bit_cast<uint32_t>(chex::kernels::to_float(chex::kernels::BFloat16{bits})) == b << 16;
    if (std::isnan(reference)) {
      ok = ok && std::isnan(widened) && emulated_bits(widened) == chex::kernels::kBFloat16CanonicalNaN;
    } else {
      ok = ok && static_cast<double>(widened) == reference && std::signbit(widened) == std::signbit(reference) &&
           emulated_bits(widened) == bits;  // representable: unchanged
    }
    if (!ok && failures++ == 0) first = b;
  }
  INFO("first failure: bf16 0x" << std::hex << first);
  CHECK(failures == 0);
}

TEST_CASE("__float2bfloat16_rn rounds to nearest even: every halfway point, the edges, random floats",
          "[emu][bf16]") {
  // Around every bf16 b (its bits in the top half of a float): the exact halfway point to the next
  // bf16 up in magnitude (low half 0x8000), its neighbours, and the extremes of the low half. This
  // covers ties with even and odd kept parts at every exponent, carries into the exponent, the
  // subnormals, and the step past the largest finite bf16 into infinity.
  std::vector<float> around_every_bf16;
  for (uint32_t b = 0; b <= 0xffff; ++b)
    for (const uint32_t low : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu})
      around_every_bf16.push_back(std::bit_cast<float>(b << 16 | low));
  check_rounding(around_every_bf16);

  using limits = std::numeric_limits<float>;
  const std::vector<float> edges{0.f,
                                 -0.f,
                                 limits::infinity(),
                                 -limits::infinity(),
                                 limits::quiet_NaN(),
                                 -limits::quiet_NaN(),
                                 limits::signaling_NaN(),
                                 std::bit_cast<float>(0x7f800001u),  // NaN with only a low payload bit
                                 std::bit_cast<float>(0xff800001u),
                                 std::bit_cast<float>(0x7fffffffu),
                                 limits::max(),
                                 -limits::max(),
                                 limits::min(),
                                 limits::denorm_min(),
                                 -limits::denorm_min(),
                                 std::bit_cast<float>(0x007fffffu),  // the largest subnormal float
                                 std::bit_cast<float>(0x7f7f7fffu),  // just below the largest bf16's tie
                                 std::bit_cast<float>(0x7f7f8000u),  // the tie past the largest: infinity
                                 1.f,
                                 1.f + std::ldexp(1.f, -8),       // tie, even kept part: down
                                 1.f + 3 * std::ldexp(1.f, -8),   // tie, odd kept part: up
                                 2.f - std::ldexp(1.f, -9)};      // rounds up into the next exponent
  check_rounding(edges);
  CHECK(emulated_bits(std::bit_cast<float>(0x7f7f8000u)) == 0x7f80);
  CHECK(emulated_bits(1.f + std::ldexp(1.f, -8)) == 0x3f80);
  CHECK(emulated_bits(1.f + 3 * std::ldexp(1.f, -8)) == 0x3f82);

  std::mt19937 gen(2026);
  std::uniform_int_distribution<uint32_t> any_bits;
  std::vector<float> random(1'000'000);
  for (float& value : random) value = std::bit_cast<float>(any_bits(gen));
  check_rounding(random);
}
