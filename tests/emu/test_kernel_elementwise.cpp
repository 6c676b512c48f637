// Elementwise GPU kernels (kernels/elementwise.cu) emulated against their CPU twins.
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
