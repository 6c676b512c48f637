#include <catch2/catch.hpp>

#include "chex/autograd.h"
#include "chex/ops.h"

TEST_CASE("elementwise add and its gradient") {
  using namespace chex;
  Tensor a = Tensor::from_vector({1, 2, 3}, {3}).set_requires_grad();
  Tensor b = Tensor::from_vector({4, 5, 6}, {3}).set_requires_grad();
  Tensor loss = ops::sum(ops::mul(ops::add(a, b), a));
  loss.backward();
  REQUIRE(loss.item() == Approx(5 + 14 + 27));
  REQUIRE(a.grad().to_vector() == std::vector<float>{6, 9, 12});
  REQUIRE(b.grad().to_vector() == std::vector<float>{1, 2, 3});
}

#include "support/gradcheck.h"

TEST_CASE("gradcheck: elementwise ops") {
  using namespace chex;
  Generator gen(1);
  Tensor a = testing::random_leaf({2, 3, 4}, gen);
  Tensor b = testing::random_leaf({2, 3, 4}, gen);
  testing::check_gradients([](const std::vector<Tensor>& x) { return ops::mul(ops::sub(x[0], x[1]), ops::sigmoid(x[0])); }, {a, b});
}
