// FastDivider (kernels/cuda_helpers.cuh), the division by a launch-time constant that the pooling
// kernels' index arithmetic uses, against the hardware's division: every divisor up to 2,100 and
// those around each power of two and the largest, with numerators at the small end, around
// multiples of the divisor and at the top of the int32 range. Exact, or an index is wrong.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <vector>

#include "chex/random.h"
#include "kernels/cuda_compat.h"
#include "kernels/cuda_helpers.cuh"

using chex::kernels::emu::FastDivider;

namespace {

std::vector<int32_t> divisors() {
  std::vector<int32_t> out;
  for (int32_t d = 1; d <= 2100; ++d) out.push_back(d);
  for (int bit = 11; bit <= 30; ++bit) {
    const int64_t power = int64_t{1} << bit;
    for (int64_t d = power - 3; d <= power + 3; ++d) out.push_back(static_cast<int32_t>(d));
  }
  for (int64_t d = std::numeric_limits<int32_t>::max() - 5; d <= std::numeric_limits<int32_t>::max(); ++d)
    out.push_back(static_cast<int32_t>(d));
  return out;
}

}  // namespace

TEST_CASE("FastDivider divides exactly over the int32 range", "[emu][fast_divider]") {
  chex::Generator gen(41);
  constexpr int64_t top = std::numeric_limits<int32_t>::max();
  int64_t mismatches = 0, checked = 0;
  for (const int32_t d : divisors()) {
    const FastDivider divider(d);
    std::vector<int64_t> numerators;
    for (int64_t n = 0; n < 300; ++n) numerators.push_back(n);
    for (int64_t n = top - 300; n <= top; ++n) numerators.push_back(n);
    for (int64_t multiple : {int64_t{1}, int64_t{2}, int64_t{7}, top / d - 1, top / d})
      for (int64_t delta = -1; delta <= 1; ++delta) numerators.push_back(multiple * d + delta);
    for (int i = 0; i < 64; ++i) numerators.push_back(static_cast<int64_t>(gen.uniform() * static_cast<float>(top)));
    for (const int64_t n64 : numerators) {
      if (n64 < 0 || n64 > top) continue;
      const auto n = static_cast<int32_t>(n64);
      int32_t quotient = 0, remainder = 0;
      divider.divmod(n, quotient, remainder);
      ++checked;
      if (quotient != n / d || remainder != n % d) {
        ++mismatches;
        if (mismatches <= 5) FAIL_CHECK(n << " / " << d << ": " << quotient << " remainder " << remainder);
      }
    }
  }
  INFO(checked << " divisions checked");
  CHECK(mismatches == 0);
  CHECK(checked > 1000000);
}
