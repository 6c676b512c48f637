#pragma once
// Gradient checking by central finite differences, as Caffe does it: the analytic gradient of
// L = sum(f(inputs) * R), R a fixed random projection, against (L(x + eps) - L(x - eps)) / (2 eps)
// for every element (or a seeded sample of them), with the error scaled by max(|a|, |n|, 1).
// Tests keep inputs away from kinks (ReLU at 0, ties in max pooling).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "chex/autograd.h"
#include "chex/ops.h"
#include "chex/random.h"
#include "chex/tensor.h"

namespace chex::testing {

struct GradcheckOptions {
  float eps = 1e-2f;           // step of the central difference
  float tolerance = 1e-2f;     // on |analytic - numeric| / max(|analytic|, |numeric|, 1)
  int max_elements = 256;      // per input: check a seeded sample when larger
  uint64_t seed = 7;
};

using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// The worst scaled error found for each input (0 for inputs that need no gradient), and the first
// offending element where the error exceeds the tolerance.
struct GradcheckResult {
  std::vector<double> worst_error;
  std::string first_failure;
};

// Compares analytic and numeric gradients of every input that has requires_grad() set.
inline GradcheckResult gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs, GradcheckOptions options = {}) {
  Generator gen(options.seed);
  const Tensor probe = [&] {
    NoGradGuard no_grad;
    return f(inputs);
  }();
  const Tensor projection = Tensor::randn(probe.shape(), gen);
  auto loss_of = [&] {
    NoGradGuard no_grad;
    return static_cast<double>(ops::sum(ops::mul(f(inputs), projection)).item());
  };

  for (const Tensor& input : inputs)
    if (input.requires_grad()) input.zero_grad();
  ops::sum(ops::mul(f(inputs), projection)).backward();

  GradcheckResult result;
  result.worst_error.assign(inputs.size(), 0.0);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& input = inputs[i];
    if (!input.requires_grad()) continue;
    REQUIRE(input.grad().defined());
    REQUIRE(input.is_contiguous());
    const std::vector<float> analytic = input.grad().to_vector();
    std::vector<int64_t> indices;
    const int64_t n = input.numel();
    if (n <= options.max_elements) {
      for (int64_t j = 0; j < n; ++j) indices.push_back(j);
    } else {
      for (int j = 0; j < options.max_elements; ++j) indices.push_back(static_cast<int64_t>(gen.below(n)));
    }
    float* data = input.data();
    for (int64_t j : indices) {
      const float original = data[j];
      data[j] = original + options.eps;
      const double plus = loss_of();
      data[j] = original - options.eps;
      const double minus = loss_of();
      data[j] = original;
      const double numeric = (plus - minus) / (2.0 * options.eps);
      const double a = analytic[j];
      const double error = std::fabs(a - numeric) / std::max({std::fabs(a), std::fabs(numeric), 1.0});
      if (error > options.tolerance && result.first_failure.empty())
        result.first_failure = "input " + std::to_string(i) + " element " + std::to_string(j) + ": analytic " +
                               std::to_string(a) + ", numeric " + std::to_string(numeric);
      result.worst_error[i] = std::max(result.worst_error[i], error);
    }
  }
  return result;
}

// Checks the gradient of every input that has requires_grad() set (a Catch2 CHECK per input).
inline void check_gradients(const TensorFunction& f, const std::vector<Tensor>& inputs, GradcheckOptions options = {}) {
  const GradcheckResult result = gradcheck(f, inputs, options);
  INFO(result.first_failure);
  for (size_t i = 0; i < inputs.size(); ++i) {
    INFO("input " << i << ": worst scaled error " << result.worst_error[i] << " (tolerance " << options.tolerance << ")");
    CHECK(result.worst_error[i] <= options.tolerance);
  }
}

// Leaf tensor of the given shape with N(0, 1) entries, requiring gradients.
inline Tensor random_leaf(const Shape& shape, Generator& gen, float stddev = 1.f) {
  Tensor t = Tensor::randn(shape, gen, 0.f, stddev);
  t.set_requires_grad();
  return t;
}

// Largest |a - b| / max(|b|, 1) over two equally sized vectors.
inline double max_scaled_error(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]) / std::max(std::fabs(static_cast<double>(b[i])), 1.0));
  return worst;
}

}  // namespace chex::testing
