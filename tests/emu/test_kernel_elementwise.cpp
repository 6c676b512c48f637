// Elementwise GPU kernels (kernels/elementwise.cu) emulated against their CPU twins.
#include <cmath>
#include <limits>

#include "kernel_test_support.h"
#include "kernels/elementwise.h"

using namespace chex;

TEST_CASE("relu kernels match the CPU twin at awkward sizes and misalignments", "[emu][relu]") {
  Generator gen(11);
  // Not multiples of the block (256) or of the vector width (4); one element; empty.
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{257}, int64_t{1023}, int64_t{4099}}) {
    for (int64_t offset : {0, 1}) {  // offset 1 breaks 16-byte alignment: the scalar path
      DYNAMIC_SECTION("n " << n << ", offset " << offset) {
        std::vector<float> x = testing::random_vector(n + offset, gen), dy = testing::random_vector(n + offset, gen);
        std::vector<float> y_ref(n), dx_ref(n);
        kernels::cpu::relu_forward({}, x.data() + offset, y_ref.data(), n);
        kernels::cpu::relu_backward({}, y_ref.data(), dy.data() + offset, dx_ref.data(), n);
        std::vector<float> reference = y_ref;
        reference.insert(reference.end(), dx_ref.begin(), dx_ref.end());
        testing::check_against_twin(
            "relu",
            [&] {
              std::vector<float> y(n + offset, -7.f), dx(n, -7.f);
              kernels::emu::relu_forward({}, x.data() + offset, y.data() + offset, n);
              kernels::emu::relu_backward({}, y.data() + offset, dy.data() + offset, dx.data(), n);
              std::vector<float> out(y.begin() + offset, y.end());
              out.insert(out.end(), dx.begin(), dx.end());
              return out;
            },
            reference, 0.0);
      }
    }
  }
}

TEST_CASE("relu backward passes the gradient where the output is positive, as the twin", "[emu][relu]") {
  // Zeros of both signs, NaN, infinities and the smallest positive values in y, in the float4 body
  // (the first 8) and in the scalar tail (the last 3).
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const float tiny = std::numeric_limits<float>::denorm_min();
  const std::vector<float> y{0.f, -0.f, nan, inf, -inf, tiny, -tiny, 1.f, 0.f, nan, tiny};
  const std::vector<float> dy{1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, -8.f, 9.f, 10.f, -11.f};
  const auto n = static_cast<int64_t>(y.size());
  std::vector<float> dx_ref(y.size());
  kernels::cpu::relu_backward({}, y.data(), dy.data(), dx_ref.data(), n);
  CHECK(dx_ref == std::vector<float>{0.f, 0.f, 0.f, 4.f, 0.f, 6.f, 0.f, -8.f, 0.f, 0.f, -11.f});
  testing::check_against_twin(
      "relu_backward edge values",
      [&] {
        std::vector<float> dx(y.size(), -7.f);
        kernels::emu::relu_backward({}, y.data(), dy.data(), dx.data(), n);
        return dx;
      },
      dx_ref, 0.0);
}
