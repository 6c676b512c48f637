#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>

#include "chex/autograd.h"
#include "chex/error.h"
#include "chex/ops.h"
#include "chex/random.h"
#include "chex/tensor.h"

using namespace chex;

TEST_CASE("tensors: creation, shape, strides, contiguity", "[tensor]") {
  Tensor t = Tensor::zeros({2, 3, 4, 5});
  CHECK(t.shape() == Shape{2, 3, 4, 5});
  CHECK(t.strides() == Shape{60, 20, 5, 1});
  CHECK(t.numel() == 120);
  CHECK(t.is_contiguous());
  CHECK(t.device() == Device::cpu());
  CHECK(t.dtype() == DType::F32);
  CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);  // host memory is 64-byte aligned
  for (float v : t.to_vector()) REQUIRE(v == 0.f);
  CHECK(Tensor::full({3}, 2.5f).to_vector() == std::vector<float>{2.5f, 2.5f, 2.5f});
  CHECK(Tensor::ones({}).item() == 1.f);
  CHECK(Tensor::empty({0, 3}).numel() == 0);
}

TEST_CASE("tensors: a channel slice of a block buffer is a batch-strided view", "[tensor]") {
  // The dense-block buffer pattern: [N, C_total, H, W], a layer's channels are a narrow() of it.
  Tensor block = Tensor::zeros({2, 8, 3, 3});
  Tensor slice = block.narrow(1, 2, 3);
  CHECK(slice.shape() == Shape{2, 3, 3, 3});
  CHECK(slice.stride(0) == 8 * 9);
  CHECK_FALSE(slice.is_contiguous());
  CHECK(slice.is_batch_strided());
  CHECK(slice.storage() == block.storage());  // no copy
  slice.fill_(7.f);
  const std::vector<float> all = block.to_vector();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 8; ++c)
      for (int64_t i = 0; i < 9; ++i) REQUIRE(all[(n * 8 + c) * 9 + i] == (c >= 2 && c < 5 ? 7.f : 0.f));
  // A prefix view (what a dense layer reads) is batch-strided too; a spatial crop is not.
  CHECK(block.narrow(1, 0, 5).is_batch_strided());
  CHECK_FALSE(block.narrow(3, 0, 2).is_batch_strided());
  Tensor copy = slice.contiguous();
  CHECK(copy.is_contiguous());
  CHECK(copy.storage() != block.storage());
  for (float v : copy.to_vector()) REQUIRE(v == 7.f);
}

TEST_CASE("tensors: reshape, flatten, copy_, clone, detach", "[tensor]") {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  CHECK(t.reshape({3, -1}).shape() == Shape{3, 2});
  CHECK(t.reshape({6}).storage() == t.storage());  // a view when contiguous
  CHECK(Tensor::zeros({2, 3, 4, 5}).flatten().shape() == Shape{2, 60});
  CHECK_THROWS_WITH(t.reshape({4, 2}), Catch::Contains("reshape") && Catch::Contains("[2, 3]"));
  Tensor c = t.clone();
  c.fill_(1.f);
  CHECK(t.to_vector()[5] == 5.f);  // clone owns its storage
  Tensor d = t.detach();
  CHECK(d.storage() == t.storage());
  Tensor u = Tensor::zeros({2, 3});
  u.narrow(1, 1, 2).copy_(t.narrow(1, 0, 2));
  CHECK(u.to_vector() == std::vector<float>{0, 0, 1, 0, 3, 4});
}

TEST_CASE("tensors: half and bfloat16 storage converts to and from float32", "[tensor][dtype]") {
  const std::vector<float> values{0.f, 1.f, -2.5f, 65504.f, 1e-7f, 3.14159f, -0.f};
  Tensor f = Tensor::from_vector(values, {7});
  Tensor h = f.to(DType::F16);
  CHECK(h.dtype() == DType::F16);
  const std::vector<float> back = h.to(DType::F32).to_vector();
  CHECK(back[0] == 0.f);
  CHECK(back[1] == 1.f);
  CHECK(back[2] == -2.5f);
  CHECK(back[3] == 65504.f);                         // largest half
  CHECK(back[4] == std::ldexp(1.f, -23));            // subnormal half: 1e-7 rounds to 2 * 2^-24
  CHECK(back[5] == Approx(3.14159f).epsilon(1e-3));  // 11-bit mantissa
  const std::vector<float> bf = f.to(DType::BF16).to(DType::F32).to_vector();
  CHECK(bf[5] == Approx(3.14159f).epsilon(1e-2));    // 8-bit mantissa
  CHECK(bf[3] == 65536.f);                           // rounds to nearest even
  CHECK(half_to_float(0x7c00) == std::numeric_limits<float>::infinity());
  CHECK(float_to_half(1e6f) == 0x7c00);
}

TEST_CASE("random generator: reproducible and well distributed", "[random]") {
  Generator a(42), b(42), c(43);
  for (int i = 0; i < 10; ++i) REQUIRE(a.next_u64() == b.next_u64());
  CHECK(a.next_u64() != c.next_u64());
  Generator g(1);
  double sum = 0, sum_sq = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double x = g.normal();
    sum += x;
    sum_sq += x * x;
  }
  CHECK(std::abs(sum / n) < 0.02);
  CHECK(std::abs(sum_sq / n - 1.0) < 0.02);
  for (int i = 0; i < 1000; ++i) REQUIRE(g.below(7) < 7);
  CHECK_THROWS_AS(g.below(0), Error);
}

TEST_CASE("devices: CUDA requests fail with one clear error when no GPU is usable", "[device]") {
  CHECK(Device::parse("cpu") == Device::cpu());
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  CHECK_THROWS_WITH(Device::parse("tpu"), Catch::Contains("unknown device 'tpu'"));
  if (cuda_device_count() == 0) {
    CHECK_THROWS_WITH(Tensor::zeros({2}, Device::cuda()), Catch::Contains("cuda:0") && Catch::Contains("--device cpu"));
    CHECK_THROWS_WITH(Tensor::zeros({2}).to(Device::cuda()), Catch::Contains("no usable GPU") ||
                                                                 Catch::Contains("no CUDA backend"));
  }
}
