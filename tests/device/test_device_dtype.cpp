// float32 <-> bfloat16 tensor conversion (Tensor::to(DType), through the backend's cast kernels) on
// every device: the values rounding must get right, on a view that is not contiguous, and the same
// bits as the CPU's.
#include <bit>
#include <cmath>
#include <limits>

#include "device/device_test.h"

using namespace chex;

CHEX_DEVICE_TEST("float32 <-> bfloat16 conversion rounds to nearest even and matches the CPU", "[device][dtype]") {
  const float tie_even = 1.f + std::ldexp(1.f, -8);      // halfway, kept part even: down to 1
  const float tie_odd = 1.f + 3 * std::ldexp(1.f, -8);   // halfway, kept part odd: up to 1 + 2^-6
  const float subnormal_tie = std::bit_cast<float>(0x00408000u);
  const std::vector<float> values{0.f,     -0.f,      1.f,  tie_even, tie_odd, -tie_odd, 65504.f, subnormal_tie,
                                  3.3e38f, -1e-40f,   2.5f, 0.1f};
  const std::vector<float> expected{0.f,
                                    -0.f,
                                    1.f,
                                    1.f,
                                    1.f + std::ldexp(1.f, -6),
                                    -(1.f + std::ldexp(1.f, -6)),
                                    65536.f,
                                    std::bit_cast<float>(0x00400000u),  // the even neighbour
                                    std::bit_cast<float>(0x7f780000u),
                                    std::bit_cast<float>(0x80010000u),
                                    2.5f,
                                    std::bit_cast<float>(0x3dcd0000u)};
  const auto n = static_cast<int64_t>(values.size());
  const Tensor x = Tensor::from_vector(values, {n}).to(device);
  const Tensor bf16 = x.to(DType::BF16);
  CHECK(bf16.dtype() == DType::BF16);
  CHECK(bf16.device() == device);
  const std::vector<float> back = bf16.to(DType::F32).to_vector();
  REQUIRE(back.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("value " << values[i]);
    CHECK(std::bit_cast<uint32_t>(back[i]) == std::bit_cast<uint32_t>(expected[i]));
  }

  // A column of a matrix (a strided view) and random values: the same bits as on the CPU.
  testing::check_matches_cpu(
      device,
      [](Device d) {
        const Tensor m = testing::random_on(d, {37, 5}, 71);
        const Tensor column = m.narrow(1, 3, 1);
        return std::vector<Tensor>{column.to(DType::BF16).to(DType::F32), m.to(DType::BF16).to(DType::F32)};
      },
      {0.0, 0.0});
}
