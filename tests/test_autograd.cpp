#include <catch2/catch.hpp>

#include "chex/autograd.h"
#include "chex/error.h"
#include "chex/ops.h"
#include "support/gradcheck.h"

using namespace chex;

TEST_CASE("autograd: gradients of a small graph, worked by hand", "[autograd]") {
  Tensor a = Tensor::from_vector({1, 2, 3}, {3}).set_requires_grad();
  Tensor b = Tensor::from_vector({4, 5, 6}, {3}).set_requires_grad();
  // loss = sum((a + b) * a) -> dloss/da = 2a + b, dloss/db = a
  Tensor loss = ops::sum(ops::mul(ops::add(a, b), a));
  CHECK(loss.item() == Approx(5 + 14 + 27));
  loss.backward();
  CHECK(a.grad().to_vector() == std::vector<float>{6, 9, 12});
  CHECK(b.grad().to_vector() == std::vector<float>{1, 2, 3});
}

TEST_CASE("autograd: gradients accumulate across backward calls until zeroed", "[autograd]") {
  Tensor w = Tensor::from_vector({2, -1}, {2}).set_requires_grad();
  for (int i = 0; i < 3; ++i) ops::sum(ops::scale(w, 3.f)).backward();
  CHECK(w.grad().to_vector() == std::vector<float>{9, 9});
  w.zero_grad();
  CHECK_FALSE(w.grad().defined());
  ops::sum(w).backward();
  CHECK(w.grad().to_vector() == std::vector<float>{1, 1});
  w.zero_grad(/*set_to_none=*/false);
  CHECK(w.grad().to_vector() == std::vector<float>{0, 0});
}

TEST_CASE("autograd: a leaf's gradient is its own, never shared with another tensor", "[autograd]") {
  // The engine hands a leaf the incoming gradient without a copy when nothing else holds it: add's
  // backward passes one gradient to both inputs, and a leaf's backward gets the caller's tensor.
  Tensor a = Tensor::from_vector({1, 2, 3}, {3}).set_requires_grad();
  Tensor b = Tensor::from_vector({4, 5, 6}, {3}).set_requires_grad();
  ops::add(a, b).backward(Tensor::from_vector({1, 2, 3}, {3}));
  a.grad().fill_(7.f);
  CHECK(b.grad().to_vector() == std::vector<float>{1, 2, 3});
  Tensor w = Tensor::from_vector({2, -1}, {2}).set_requires_grad();
  const Tensor seed = Tensor::from_vector({0.5f, 4.f}, {2});
  w.backward(seed);
  seed.fill_(0.f);
  CHECK(w.grad().to_vector() == std::vector<float>{0.5f, 4.f});
  ops::sum(ops::scale(w, 2.f)).backward();  // accumulates into w's own gradient
  CHECK(w.grad().to_vector() == std::vector<float>{2.5f, 6.f});
  CHECK(seed.to_vector() == std::vector<float>{0.f, 0.f});
}

TEST_CASE("autograd: a tensor used twice gets both contributions (diamond)", "[autograd]") {
  Tensor x = Tensor::from_vector({0.5f, -1.5f}, {2}).set_requires_grad();
  Tensor s = ops::sigmoid(x);
  Tensor y = ops::add(ops::mul(s, s), ops::scale(s, 2.f));  // y = s^2 + 2s
  ops::sum(y).backward();
  const std::vector<float> xv{0.5f, -1.5f};
  for (int i = 0; i < 2; ++i) {
    const float sv = 1.f / (1.f + std::exp(-xv[i]));
    CHECK(x.grad().to_vector()[i] == Approx((2 * sv + 2) * sv * (1 - sv)));
  }
}

TEST_CASE("autograd: views (narrow, reshape, clone) route gradients", "[autograd]") {
  Generator gen(3);
  Tensor x = testing::random_leaf({2, 5, 3}, gen);
  testing::check_gradients(
      [](const std::vector<Tensor>& in) {
        Tensor part = in[0].narrow(1, 1, 3);           // batch-strided view
        return ops::mul(part.reshape({2, 9}), part.clone().reshape({2, 9}));
      },
      {x});
}

TEST_CASE("autograd: no-grad mode records nothing", "[autograd]") {
  Tensor x = Tensor::ones({2}).set_requires_grad();
  {
    NoGradGuard guard;
    Tensor y = ops::scale(x, 2.f);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
  }
  CHECK(ops::scale(x, 2.f).requires_grad());
  CHECK(GradMode::enabled());
}

TEST_CASE("autograd: backward needs a scalar, or an explicit gradient", "[autograd][errors]") {
  Tensor x = Tensor::ones({2, 3}).set_requires_grad();
  Tensor y = ops::relu(x);
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("one-element") && Catch::Contains("relu"));
  y.backward(Tensor::full({2, 3}, 2.f));
  CHECK(x.grad().to_vector() == std::vector<float>(6, 2.f));
  CHECK_THROWS_WITH(ops::relu(x).backward(Tensor::ones({3})), Catch::Contains("[3]") && Catch::Contains("[2, 3]"));
  Tensor constant = Tensor::ones({});
  CHECK_THROWS_WITH(constant.backward(), Catch::Contains("does not require gradients"));
}

TEST_CASE("autograd: backward twice through a freed graph is an error, retain_graph allows it", "[autograd][errors]") {
  Tensor x = Tensor::from_vector({1, -2}, {2}).set_requires_grad();
  Tensor loss = ops::sum(ops::relu(x));
  loss.backward();
  CHECK_THROWS_WITH(loss.backward(), Catch::Contains("second time") && Catch::Contains("retain_graph"));

  Tensor kept = ops::sum(ops::relu(x));
  x.zero_grad();
  kept.backward(Tensor(), /*retain_graph=*/true);
  kept.backward();
  CHECK(x.grad().to_vector() == std::vector<float>{2, 0});
}

TEST_CASE("autograd: saved tensors are released after backward", "[autograd][allocator]") {
  Allocator& a = allocator_for(Device::cpu());
  Tensor x = Tensor::ones({256, 1024}).set_requires_grad();  // 1 MiB
  const size_t before = a.stats().current_bytes;
  {
    Tensor loss = ops::sum(ops::sigmoid(ops::relu(x)));
    CHECK(a.stats().current_bytes >= before + 2 * (1 << 20));  // relu and sigmoid outputs are saved
    loss.backward();
  }
  // Only x's gradient remains.
  CHECK(a.stats().current_bytes == before + (1 << 20));
}

TEST_CASE("autograd: only leaves can be marked and only float32 can require gradients", "[autograd][errors]") {
  Tensor x = Tensor::ones({2}).set_requires_grad();
  Tensor y = ops::relu(x);
  CHECK_THROWS_WITH(y.set_requires_grad(), Catch::Contains("leaf") && Catch::Contains("relu"));
  CHECK_THROWS_AS(Tensor::ones({2}).to(DType::F16).set_requires_grad(), Error);
}

TEST_CASE("ops: elementwise forwards and errors", "[ops]") {
  Tensor a = Tensor::from_vector({1, -2, 3}, {3});
  Tensor b = Tensor::from_vector({4, 5, -6}, {3});
  CHECK(ops::add(a, b).to_vector() == std::vector<float>{5, 3, -3});
  CHECK(ops::sub(a, b).to_vector() == std::vector<float>{-3, -7, 9});
  CHECK(ops::mul(a, b).to_vector() == std::vector<float>{4, -10, -18});
  CHECK(ops::scale(a, -0.5f).to_vector() == std::vector<float>{-0.5f, 1, -1.5f});
  CHECK(ops::relu(a).to_vector() == std::vector<float>{1, 0, 3});
  CHECK(ops::sigmoid(Tensor::zeros({1})).item() == 0.5f);
  CHECK(ops::sum(a).item() == 2.f);
  CHECK(ops::mean(a).item() == Approx(2.f / 3));
  CHECK_THROWS_WITH(ops::add(a, Tensor::ones({2, 2})), Catch::Contains("add") && Catch::Contains("[3]") &&
                                                           Catch::Contains("[2, 2]"));
  CHECK_THROWS_WITH(ops::mul(a, Tensor()), Catch::Contains("mul") && Catch::Contains("undefined"));
  CHECK_THROWS_WITH(ops::mean(Tensor::empty({0})), Catch::Contains("mean"));
}

TEST_CASE("gradcheck: elementwise ops, and the checker catches a wrong gradient", "[autograd][gradcheck]") {
  Generator gen(1);
  Tensor a = testing::random_leaf({2, 3, 4}, gen);
  Tensor b = testing::random_leaf({2, 3, 4}, gen);
  testing::check_gradients(
      [](const std::vector<Tensor>& x) { return ops::mul(ops::sub(x[0], x[1]), ops::sigmoid(x[0])); }, {a, b});
  // Relu away from its kink.
  Tensor r = Tensor::from_vector({-1.f, -0.3f, 0.4f, 2.f}, {4}).set_requires_grad();
  testing::check_gradients([](const std::vector<Tensor>& x) { return ops::relu(x[0]); }, {r});
  // The checker itself catches a wrong backward: scale by 3 whose gradient claims 6.
  Tensor w = Tensor::from_vector({1.f, 2.f}, {2}).set_requires_grad();
  auto broken = [](const std::vector<Tensor>& x) {
    return record("broken_scale", ops::scale(x[0].detach(), 3.f), {x[0]},
                  [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{ops::scale(g, 6.f)}; });
  };
  const testing::GradcheckResult result = testing::gradcheck(broken, {w});
  CHECK(result.worst_error[0] > 0.3);
  CHECK_FALSE(result.first_failure.empty());
}
